"""410 Gone: the service's watch comes back after etcd was compacted past the version it holds.
The cache must relist and stay correct: changes and deletions made while it was away show up.

This needs its own control plane: kube-apiserver's watch cache would serve recent versions from
memory for minutes, so the apiserver here runs with ``--watch-cache=false`` (watches go to etcd,
where a compacted revision is 410). The service reaches the apiserver through a ``FaultProxy``
that holds its traffic while the cluster moves on without it."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane, running_control_plane
from harness.simulator import Simulator, running_simulator
from service.app import create_app
from tests.support.api import GROUP, PLURAL, follow, restarts_url
from tests.support.faultproxy import FaultProxy
from tests.support.pods import pod_is_running, pod_manifest, read_pod
from tests.support.service_process import open_settings
from tests.support.serving import serve
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with running_control_plane(extra_apiserver_args=["--watch-cache=false"]) as plane:
        yield plane


@pytest.fixture(scope="module")
def admin(plane: ControlPlane) -> Iterator[k8s.ApiClient]:
    with plane.api_client() as api:
        yield api


@pytest.fixture(scope="module")
def node_agents(plane: ControlPlane) -> Iterator[Simulator]:
    with plane.api_client() as api, running_simulator(api, plane.node_name) as sim:
        yield sim


def etcd_call(plane: ControlPlane, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """etcd's v3 JSON gateway (no etcdctl needed)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{plane.etcd_port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def compact_etcd(plane: ControlPlane) -> int:
    """Compact etcd at its current revision: every older revision is gone."""
    header = etcd_call(plane, "/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]
    revision = int(header["revision"])
    etcd_call(plane, "/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


def expired_relists(api: httpx.Client, namespace: str) -> float:
    pattern = (
        r"crr_gateway_watch_restarts_total\{reason=\"expired\",scope=\""
        + re.escape(namespace)
        + r"\"\} ([0-9.]+)"
    )
    found = re.search(pattern, api.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def test_a_watch_that_expires_relists_and_the_cache_stays_correct(
    plane: ControlPlane, admin: k8s.ApiClient, node_agents: Simulator, tmp_path: Path
) -> None:
    namespace = "expiry"
    core = k8s.CoreV1Api(admin)
    crrs = k8s.CustomObjectsApi(admin)
    core.create_namespace({"metadata": {"name": namespace}})
    for pod in ("web-0", "web-1", "web-2"):
        core.create_namespaced_pod(namespace, pod_manifest(pod, ["app"]))

        def running(pod: str = pod) -> bool:
            return pod_is_running(read_pod(admin, namespace, pod))

        wait_until(f"{pod} running", running)

    def crr(name: str) -> dict[str, Any]:
        got: dict[str, Any] = crrs.get_namespaced_custom_object(
            GROUP, "v1beta1", namespace, PLURAL, name
        )
        return got

    with FaultProxy(plane.apiserver_port) as proxy, ExitStack() as stack:
        kubeconfig = proxy.kubeconfig(plane.kubeconfig, tmp_path / "proxied.kubeconfig")
        # watches end (cleanly) every second, and resume from the last version seen
        settings = open_settings(kubeconfig, [namespace], watch_timeout_seconds=1)
        url = stack.enter_context(serve(create_app(settings)))
        api = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        wait_until("the service to be ready", lambda: api.get("/readyz").status_code == 200)

        node_agents.daemon_down = True  # the restarts wait until the service is cut off
        kept = api.post(restarts_url(namespace), json={"pod": "web-0"}).json()["name"]
        dropped = api.post(restarts_url(namespace), json={"pod": "web-1"}).json()["name"]
        assert api.get(restarts_url(namespace, kept)).json()["finished"] is False
        assert expired_relists(api, namespace) == 0

        proxy.paused = True  # the service hears nothing from here on
        try:
            # while it is away: one restart is deleted unfinished, one is made by someone
            # else, and both others run to their end
            crrs.delete_namespaced_custom_object(GROUP, "v1beta1", namespace, PLURAL, dropped)
            crrs.create_namespaced_custom_object(
                GROUP,
                "v1beta1",
                namespace,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/v1beta1",
                    "kind": "ContainerRecreateRequest",
                    "metadata": {"name": "made-elsewhere"},
                    "spec": {"podName": "web-2", "containers": [{"name": "app"}]},
                },
            )
            node_agents.daemon_down = False
            for name in (kept, "made-elsewhere"):

                def completed(name: str = name) -> bool:
                    return bool(crr(name).get("status", {}).get("phase") == "Completed")

                wait_until(f"{name} to complete", completed)
            # and the history the service would resume from is compacted away
            compact_etcd(plane)
        finally:
            proxy.paused = False

        wait_until("a 410 and a relist", lambda: expired_relists(api, namespace) >= 1)
        final = follow(api, namespace, kept)[-1]
        assert final["result"] == "Succeeded", final
        assert final["resourceVersion"] == crr(kept)["metadata"]["resourceVersion"]
        elsewhere = follow(api, namespace, "made-elsewhere")[-1]
        assert elsewhere["result"] == "Succeeded"
        assert elsewhere["requestedBy"] is None  # not made through the service
        gone = api.get(restarts_url(namespace, dropped)).json()
        assert gone["finished"] is True
        assert gone["result"] == "Failed" and gone["failureReason"] == "Deleted"
        listed = [r["name"] for r in api.get(restarts_url(namespace)).json()["items"]]
        assert sorted(listed) == sorted([kept, dropped, "made-elsewhere"])
        assert api.get("/readyz").status_code == 200
