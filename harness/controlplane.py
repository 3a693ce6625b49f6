"""A real, single-node Kubernetes control plane with OpenKruise, on loopback.

It runs etcd, kube-apiserver (RBAC on, real service-account tokens) and the real kruise-manager
(its webhooks and controllers), installs every OpenKruise CRD from the kruise module and creates
one Node for the simulator (``harness/simulator``) to play the kubelet and kruise-daemon
on. Every process is started in its own process group, dies with its parent (PR_SET_PDEATHSIG)
and is stopped by :meth:`ControlPlane.stop`, which is safe to call more than once.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from harness.build import KUBERNETES_VERSION, ensure_binaries, kruise_source_dir
from harness.certs import Pki, write_pki

log = logging.getLogger(__name__)

NODE_NAME = "sim-node-1"
KRUISE_NAMESPACE = "kruise-system"
# the project's own CRDs (RestartRollout), installed as deploy/ installs them in a cluster
OUR_CRDS = Path(__file__).resolve().parents[1] / "deploy" / "crds"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Run in the child before exec: get SIGKILL when the parent dies, so nothing is orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.popen = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, on_timeout: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{on_timeout()}")


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kruise-manager on loopback; see the module docstring."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="crr-cp-")))
    node_name: str = NODE_NAME
    etcd_port: int = field(default_factory=free_port)
    apiserver_port: int = field(default_factory=free_port)
    extra_apiserver_args: Sequence[str] = ()
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def pki(self) -> Pki:
        return self._pki

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        binaries = ensure_binaries()
        kruise_src = kruise_source_dir()
        self._pki = write_pki(self.workdir / "pki")
        self._write_kubeconfig()
        try:
            self._start_etcd()
            self._start_apiserver(binaries["kube-apiserver"])
            self._bootstrap(kruise_src)
            self._start_kruise(binaries["kruise-manager"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in ("kruise-manager", "kube-apiserver", "etcd"):
            proc = self.processes.get(name)
            if proc is not None:
                proc.stop()
        data = getattr(self, "_etcd_data", None)
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)
        if os.environ.get("CRR_KEEP_CONTROLPLANE_LOGS") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------------

    def api_client(self) -> k8s.ApiClient:
        """An admin (system:masters) client. Callers close it when done."""
        config = k8s.Configuration()
        config.host = self.url
        config.ssl_ca_cert = str(self._pki.ca_cert)
        config.cert_file = str(self._pki.admin_cert)
        config.key_file = str(self._pki.admin_key)
        return k8s.ApiClient(config)

    def kubectl(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def raw_get(self, path: str) -> tuple[int, bytes]:
        """GET a path on the apiserver as admin, without the client library."""
        ctx = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        ctx.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        try:
            with urllib.request.urlopen(self.url + path, context=ctx, timeout=5) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    # -- the parts -------------------------------------------------------------------------

    def _write_kubeconfig(self) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": b64(self._pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": b64(self._pki.admin_cert),
                        "client-key-data": b64(self._pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        proc = Process(name, argv, self.workdir / f"{name}.log", env)
        proc.start()
        self.processes[name] = proc
        return proc

    def _start_etcd(self) -> None:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise RuntimeError("etcd is not installed (Debian package etcd-server; see README.md)")
        # etcd's data is throwaway: keep it in memory when /dev/shm is there.
        shm = Path("/dev/shm")
        data = Path(tempfile.mkdtemp(prefix="crr-etcd-", dir=shm if shm.is_dir() else None))
        self._etcd_data = data
        peer = free_port()
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        proc = self._spawn(
            "etcd",
            [
                etcd,
                "--name=default",
                f"--data-dir={data}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--listen-metrics-urls=",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")

        wait_for("etcd", healthy, 30, proc.log_tail)

    def apiserver_argv(self, binary: Path) -> list[str]:
        pki = self._pki
        return [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki.sa_public}",
            f"--service-account-signing-key-file={pki.sa_private}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--profiling=false",
            "--v=0",
            *self.extra_apiserver_args,
        ]

    def _start_apiserver(self, binary: Path) -> None:
        self._apiserver_binary = binary
        proc = self._spawn("kube-apiserver", self.apiserver_argv(binary))
        wait_for(
            "kube-apiserver /readyz",
            lambda: self.raw_get("/readyz")[0] == 200,
            90,
            proc.log_tail,
        )

    def stop_apiserver(self) -> None:
        """Stop only kube-apiserver (for fault tests); :meth:`start_apiserver` brings it back."""
        self.processes["kube-apiserver"].stop()

    def start_apiserver(self) -> None:
        self._start_apiserver(self._apiserver_binary)

    def _bootstrap(self, kruise_src: Path) -> None:
        """Namespaces, every kruise CRD and ours (RestartRollout), the webhook configurations kruise
        expects, our Node."""
        self.kubectl("create", "namespace", KRUISE_NAMESPACE)
        self.kubectl("apply", "--server-side", "-f", str(kruise_src / "config/crd/bases"))
        self.kubectl("apply", "--server-side", "-f", str(OUR_CRDS))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        self.kubectl("apply", "--server-side", "-f", "-", input=webhook_configurations(kruise_src))
        node_yaml = yaml.safe_dump(node(self.node_name))
        self.kubectl("apply", "--server-side", "-f", "-", input=node_yaml)

    def stop_kruise(self) -> None:
        """Stop only kruise-manager (for fault tests); :meth:`start_kruise` brings it back."""
        self.processes["kruise-manager"].stop()

    def start_kruise(self, kubeconfig: Path | None = None) -> None:
        """``kubeconfig``: another way to the apiserver for kruise-manager than the admin's
        (tests put a fault proxy in its path to make its informers fall behind)."""
        self._start_kruise(self._kruise_binary, kubeconfig)

    def _start_kruise(self, binary: Path, kubeconfig: Path | None = None) -> None:
        self._kruise_binary = binary
        health = free_port()
        webhook_port = free_port()
        env = {
            **os.environ,
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(webhook_port),
            "WEBHOOK_CERT_DIR": str(self.workdir / "webhook-certs"),
            "POD_NAMESPACE": KRUISE_NAMESPACE,
        }
        proc = self._spawn(
            "kruise-manager",
            [
                str(binary),
                f"--kubeconfig={kubeconfig or self.kubeconfig}",
                "--enable-leader-election=false",
                f"--metrics-addr=127.0.0.1:{free_port()}",
                f"--health-probe-addr=127.0.0.1:{health}",
                "--enable-pprof=false",
                "--v=1",
            ],
            env,
        )

        def ready() -> bool:
            url = f"http://127.0.0.1:{health}/readyz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status != 200:
                    return False
            return self._crr_webhook_wired(webhook_port)

        wait_for("kruise-manager readiness and webhooks", ready, 180, proc.log_tail)

    def _crr_webhook_wired(self, port: int) -> bool:
        """kruise-manager (this one: a restarted one listens on a new port) has written its URL
        and CA bundle into the CRR webhook."""
        status, body = self.raw_get(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
            "kruise-mutating-webhook-configuration"
        )
        if status != 200:
            return False
        for hook in json.loads(body)["webhooks"]:
            config = hook["clientConfig"]
            url = config.get("url", "")
            if f":{port}/" in url and "containerrecreaterequest" in url and config.get("caBundle"):
                return True
        return False

    def version(self) -> str:
        status, body = self.raw_get("/version")
        assert status == 200, body
        version: str = json.loads(body)["gitVersion"]
        return version


def webhook_configurations(kruise_src: Path) -> str:
    """kruise's webhook configurations as its kustomize base renders them (``kruise-`` prefix).

    kruise-manager fills in the URL (from WEBHOOK_HOST) and the CA bundle itself when it starts.
    """
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(kruise_src / "config/webhook")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    docs = []
    for doc in yaml.safe_load_all(rendered):
        if doc and doc["kind"].endswith("WebhookConfiguration"):
            doc["metadata"]["name"] = "kruise-" + doc["metadata"]["name"]
            for hook in doc["webhooks"]:
                hook["clientConfig"]["service"]["name"] = "kruise-webhook-service"
            docs.append(doc)
    assert len(docs) == 2, "expected kruise's mutating and validating webhook configurations"
    return yaml.safe_dump_all(docs)


def node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
    }


@contextlib.contextmanager
def running_control_plane(**kwargs: Any) -> Iterator[ControlPlane]:
    plane = ControlPlane(**kwargs)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


__all__ = ["KUBERNETES_VERSION", "NODE_NAME", "ControlPlane", "running_control_plane"]
