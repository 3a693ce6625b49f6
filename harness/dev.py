"""``make dev``: the local control plane, the simulated node, a demo pod and the service, in the
foreground.

Writes the admin kubeconfig to ``.dev/kubeconfig``, seeds namespace ``demo`` with a running pod
``web-0`` (containers ``nginx`` and ``sidecar``) and a CloneSet ``shop`` of 4 pods (containers
``app`` and ``sidecar``), starts crr-gateway on http://127.0.0.1:8080
(``PORT`` changes it), writes ``.dev/env`` (``KUBECONFIG``, ``CRR_GATEWAY_URL`` and a caller token
``CRR_GATEWAY_TOKEN`` valid for ``demo``) and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType

from kubernetes import client as k8s

from harness.controlplane import ControlPlane, Process, wait_for
from harness.simulator import Simulator

DEV_DIR = Path(".dev")
DEMO_NAMESPACE = "demo"
DEMO_POD = "web-0"
SHOP = "shop"  # a CloneSet to roll out: README shows a rollout of it
SHOP_REPLICAS = 4
CALLER = "portal"
CALLER_ROLE = Path(__file__).resolve().parents[1] / "deploy/gateway/caller-clusterrole.yaml"


def seed_demo(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": DEMO_NAMESPACE}})
    core.create_namespaced_pod(
        DEMO_NAMESPACE,
        {
            "metadata": {"name": DEMO_POD, "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 80}],
                    },
                    {"name": "sidecar", "image": "busybox:1.36"},
                ]
            },
        },
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(DEMO_POD, DEMO_NAMESPACE)
        statuses = pod.status.container_statuses or []
        if pod.status.phase == "Running" and len(statuses) == 2:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{DEMO_NAMESPACE}/{DEMO_POD} did not start")


def shop_cloneset() -> dict[str, object]:
    """CloneSet ``shop``: 4 pods with containers ``app`` and ``sidecar`` and the
    ``KruisePodReady`` readiness gate, so a restart takes a pod out of endpoints first."""
    labels = {"app": SHOP}
    return {
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "metadata": {"name": SHOP, "labels": labels},
        "spec": {
            "replicas": SHOP_REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "readinessGates": [{"conditionType": "KruisePodReady"}],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {"name": "app", "image": "example.test/shop:1.0"},
                        {"name": "sidecar", "image": "busybox:1.36"},
                    ],
                },
            },
        },
    }


def seed_shop(api: k8s.ApiClient) -> None:
    """The CloneSet; kruise-manager creates its pods and the simulated node runs them."""
    k8s.CustomObjectsApi(api).create_namespaced_custom_object(
        "apps.kruise.io", "v1alpha1", DEMO_NAMESPACE, "clonesets", shop_cloneset()
    )
    core = k8s.CoreV1Api(api)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(DEMO_NAMESPACE, label_selector=f"app={SHOP}").items
        running = [p for p in pods if p.status.phase == "Running"]
        if len(running) == SHOP_REPLICAS:
            return
        time.sleep(0.3)
    raise TimeoutError(f"CloneSet {DEMO_NAMESPACE}/{SHOP} did not get {SHOP_REPLICAS} pods")


def caller_token(plane: ControlPlane, api: k8s.ApiClient) -> str:
    """A ServiceAccount ``portal`` in ``demo`` bound to the ``crr-gateway-caller`` role, and a
    token for it, as a portal's service account would get in a cluster."""
    plane.kubectl("apply", "--server-side", "-f", str(CALLER_ROLE))
    plane.kubectl("-n", DEMO_NAMESPACE, "create", "serviceaccount", CALLER)
    plane.kubectl(
        "-n",
        DEMO_NAMESPACE,
        "create",
        "rolebinding",
        f"{CALLER}-restarts",
        "--clusterrole=crr-gateway-caller",
        f"--serviceaccount={DEMO_NAMESPACE}:{CALLER}",
    )
    request = k8s.CoreV1Api(api).create_namespaced_service_account_token(
        CALLER, DEMO_NAMESPACE, {"spec": {"expirationSeconds": 86400}}
    )
    token: str = request.status.token
    return token


def start_service(plane: ControlPlane, kubeconfig: Path, port: int) -> Process:
    env = {
        **os.environ,
        "CRR_GATEWAY_KUBECONFIG": str(kubeconfig.resolve()),
        "CRR_GATEWAY_NAMESPACES": DEMO_NAMESPACE,
        "CRR_GATEWAY_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    service = Process(
        "crr-gateway", [sys.executable, "-m", "service"], DEV_DIR / "service.log", env
    )
    service.start()
    plane.processes["crr-gateway"] = service

    def ready() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)

    wait_for("crr-gateway /readyz", ready, 60, service.log_tail)
    return service


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    DEV_DIR.mkdir(exist_ok=True)
    plane = ControlPlane()
    api: k8s.ApiClient | None = None
    sim: Simulator | None = None
    try:
        print("starting etcd, kube-apiserver and kruise-manager ...", flush=True)
        plane.start()
        api = plane.api_client()
        sim = Simulator(api, plane.node_name)
        sim.start()
        seed_demo(api)
        seed_shop(api)
        kubeconfig = DEV_DIR / "kubeconfig"
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        token = caller_token(plane, api)
        port = int(os.environ.get("PORT", "8080"))
        start_service(plane, kubeconfig, port)
        url = f"http://127.0.0.1:{port}"
        env_file = DEV_DIR / "env"
        env_file.write_text(
            f"export KUBECONFIG={kubeconfig.resolve()}\n"
            f"export CRR_GATEWAY_URL={url}\n"
            f"export CRR_GATEWAY_TOKEN={token}\n"
        )
        env_file.chmod(0o600)
        print(
            f"""
Local control plane is up ({plane.version()}, OpenKruise v1.9.0, node {plane.node_name}).
  crr-gateway: {url}  (docs: {url}/docs, live view: {url}/ui/, log: {DEV_DIR / "service.log"})
  env:         . {env_file}   (KUBECONFIG, CRR_GATEWAY_URL, CRR_GATEWAY_TOKEN for namespace demo)
  try:         kubectl --kubeconfig {kubeconfig} -n {DEMO_NAMESPACE} get pods,cloneset,rro
  logs:        {plane.workdir}
Press Ctrl-C to stop everything.""",
            flush=True,
        )
        while not stop.wait(1):
            for name, proc in plane.processes.items():
                if not proc.running:
                    print(f"{name} exited unexpectedly:\n{proc.log_tail()}", file=sys.stderr)
                    return 1
        return 0
    finally:
        print("stopping ...", flush=True)
        service = plane.processes.pop("crr-gateway", None)
        if service is not None:
            service.stop()
        if sim is not None:
            sim.stop()
        if api is not None:
            api.close()
        plane.stop()
        (DEV_DIR / "kubeconfig").unlink(missing_ok=True)
        (DEV_DIR / "env").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
