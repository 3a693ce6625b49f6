"""The bench's world: the local control plane, the simulated node, pods, tokens, and the
service as a real subprocess (``python -m service``)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s

from harness.controlplane import ControlPlane, Process, free_port
from harness.simulator import Simulator
from service.config import Settings
from service.core.crr import CRR_GROUP, CRR_PLURAL, build_crr
from service.core.naming import generate_name, request_hash
from service.core.rules import NO_READINESS_GATE_WARNING
from service.core.schemas import RestartRequest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CRR_VERSION = "v1beta1"
READER_ROLE = "crr-bench-reader"
CALLER_ROLE = "crr-bench-caller"
CONTAINERS = ("app", "sidecar")
LONG_TTL = 86400


def wait(what: str, check: Callable[[], object], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # still starting: keep trying until the deadline
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def auth_landed() -> bool:
    """Whether the service has authentication modes yet (issue 4)."""
    return "auth_mode" in Settings.model_fields


def bench_settings() -> dict[str, str]:
    """What the bench changes from the defaults, and only where the setting exists: no
    authentication on loopback (unless a measurement asks for it), and no per-caller rate
    limit or per-namespace cap, which would refuse a benchmark's creates by design."""
    wanted = {
        "auth_mode": "none",
        "rate_limit_per_second": "0",
        "max_active_restarts_per_namespace": "0",
    }
    return {
        f"CRR_GATEWAY_{name.upper()}": value
        for name, value in wanted.items()
        if name in Settings.model_fields
    }


# ------------------------------------------------------------------ the control plane


@dataclass
class World:
    """Control plane + simulator, and the admin-side helpers the measurements need."""

    plane: ControlPlane = field(default_factory=ControlPlane)
    api: Any = None
    simulator: Simulator | None = None

    def start(self) -> World:
        self.plane.start()
        self.api = self.plane.api_client()
        self.simulator = Simulator(self.api, self.plane.node_name)
        self.simulator.start()
        return self

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.api is not None:
            self.api.close()
            self.api = None
        self.plane.stop()

    @property
    def sim(self) -> Simulator:
        assert self.simulator is not None
        return self.simulator

    @property
    def core(self) -> Any:
        return k8s.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return k8s.CustomObjectsApi(self.api)

    def new_client(self, pool_size: int | None = None) -> Any:
        """A separate admin client with its own connection pool (of ``pool_size``)."""
        config = k8s.Configuration()
        config.host = self.plane.url
        config.ssl_ca_cert = str(self.plane.pki.ca_cert)
        config.cert_file = str(self.plane.pki.admin_cert)
        config.key_file = str(self.plane.pki.admin_key)
        if pool_size is not None:
            config.connection_pool_maxsize = pool_size
        return k8s.ApiClient(config)

    # -- namespaces and pods

    def namespace(self, name: str) -> str:
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def pods(self, namespace: str, count: int, prefix: str = "p") -> list[str]:
        """``count`` running pods with two containers each; returns their names."""
        names = [f"{prefix}-{i:05d}" for i in range(count)]

        def create(name: str) -> None:
            self.core.create_namespaced_pod(namespace, pod_manifest(name))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, names))

        def all_running() -> bool:
            resp = self.core.list_namespaced_pod(namespace, _preload_content=False)
            items = json.loads(resp.data)["items"]
            running = sum(1 for p in items if pod_running(p))
            return running >= count

        wait(f"{count} pods running in {namespace}", all_running, 60 + count * 0.5, 0.5)
        return names

    # -- identities

    def reader_token(self, namespace: str, name: str = "bench-poller") -> str:
        """A token for a service account that may get CRRs (for wrk: no client certs)."""
        rbac = k8s.RbacAuthorizationV1Api(self.api)
        rbac.create_cluster_role(
            {
                "metadata": {"name": READER_ROLE},
                "rules": [
                    {
                        "apiGroups": [CRR_GROUP],
                        "resources": [CRR_PLURAL],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            }
        )
        return self._sa_token(namespace, name, READER_ROLE)

    def caller_token(self, namespace: str, name: str = "bench-caller") -> str:
        """A token for a service account with what a caller needs by hand: create/get/list/
        delete CRRs and get pods (the authorization the service reviews)."""
        rbac = k8s.RbacAuthorizationV1Api(self.api)
        rbac.create_cluster_role(
            {
                "metadata": {"name": CALLER_ROLE},
                "rules": [
                    {
                        "apiGroups": [CRR_GROUP],
                        "resources": [CRR_PLURAL],
                        "verbs": ["create", "get", "list", "watch", "delete"],
                    },
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                ],
            }
        )
        return self._sa_token(namespace, name, CALLER_ROLE)

    def _sa_token(self, namespace: str, name: str, role: str) -> str:
        self.core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        k8s.RbacAuthorizationV1Api(self.api).create_cluster_role_binding(
            {
                "metadata": {"name": f"{name}-{namespace}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            }
        )
        resp = self.core.create_namespaced_service_account_token(
            name,
            namespace,
            {"spec": {"expirationSeconds": 24 * 3600}},
            _preload_content=False,
        )
        token: str = json.loads(resp.data)["status"]["token"]
        return token

    # -- CRRs

    def crr_body(self, namespace: str, pod: str, *, ttl: int = LONG_TTL) -> dict[str, Any]:
        """The CRR the service would create for ``{"pod": pod}`` (same builder, same body)."""
        request = RestartRequest(pod=pod, ttlSecondsAfterFinished=ttl)
        return build_crr(
            namespace=namespace,
            name=generate_name(pod),
            version=CRR_VERSION,
            request=request,
            containers=list(CONTAINERS),
            requested_by="anonymous",
            warnings=[NO_READINESS_GATE_WARNING],
            body_hash=request_hash(request),
            idempotency=None,
        )

    def create_crr(self, api: Any, namespace: str, body: dict[str, Any]) -> None:
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            CRR_GROUP, CRR_VERSION, namespace, CRR_PLURAL, body, _preload_content=False
        )

    def bulk_crrs(self, namespace: str, pods: list[str], count: int, workers: int = 8) -> None:
        """``count`` CRRs spread over ``pods``, created as admin through kruise's webhook."""
        clients = [self.new_client() for _ in range(workers)]
        try:

            def work(index: int) -> None:
                for attempt in range(5):
                    # a fresh random name each try: 10,000 names of 5 random characters in one
                    # namespace collide now and then (409), as the service's own do
                    body = self.crr_body(namespace, pods[index % len(pods)])
                    try:
                        self.create_crr(clients[index % workers], namespace, body)
                        return
                    except k8s.ApiException as e:
                        if e.status not in (409, 429, 500, 503, 504) or attempt == 4:
                            raise
                        if e.status != 409:
                            time.sleep(0.5 * (attempt + 1))

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, range(count)))
        finally:
            for client in clients:
                client.close()

    def delete_crrs(self, namespace: str) -> None:
        self.custom.delete_collection_namespaced_custom_object(
            CRR_GROUP, CRR_VERSION, namespace, CRR_PLURAL, _preload_content=False
        )

    def complete_crr(self, namespace: str, name: str) -> None:
        """Write the final status as kruise-daemon does (all containers Succeeded)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        states = [{"name": c, "phase": "Succeeded", "isKilled": True} for c in CONTAINERS]
        self.custom.patch_namespaced_custom_object_status(
            CRR_GROUP,
            CRR_VERSION,
            namespace,
            CRR_PLURAL,
            name,
            {
                "status": {
                    "phase": "Completed",
                    "completionTime": now,
                    "containerRecreateStates": states,
                }
            },
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )

    def request_totals_text(self) -> str:
        status, body = self.plane.raw_get("/metrics")
        if status != 200:
            raise RuntimeError(f"apiserver /metrics answered {status}")
        return body.decode()


def pod_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {
            "containers": [{"name": c, "image": f"example.test/{c}:1.0"} for c in CONTAINERS],
            "terminationGracePeriodSeconds": 5,
        },
    }


def pod_running(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    return (
        status.get("phase") == "Running"
        and len(statuses) == len(CONTAINERS)
        and all(s.get("containerID") for s in statuses)
    )


# ------------------------------------------------------------------ the service


@dataclass
class Service:
    """``python -m service`` as a subprocess, on a free loopback port."""

    world: World
    namespaces: Iterable[str]
    workdir: Path
    name: str = "service"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: Process | None = None
    argv: list[str] | None = None  # default: python -m service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.popen is not None
        return self.process.popen.pid

    def start(self) -> Service:
        env = {
            **os.environ,
            "CRR_GATEWAY_KUBECONFIG": str(self.world.plane.kubeconfig),
            "CRR_GATEWAY_NAMESPACES": ",".join(self.namespaces),
            "CRR_GATEWAY_HOST": "127.0.0.1",
            "PORT": str(self.port),
            **self.env,
        }
        for name, value in bench_settings().items():
            env.setdefault(name, value)
        self.process = Process(
            self.name,
            self.argv or [sys.executable, "-m", "service"],
            self.workdir / f"{self.name}.log",
            env,
        )
        self.process.start()

        def ready() -> bool:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200

        try:
            wait(f"{self.name} /readyz", ready, 60)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)
            self.process = None

    def rss_mib(self) -> float:
        return rss_mib(self.pid)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
