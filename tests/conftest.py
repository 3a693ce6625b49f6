"""Fixtures shared by the whole suite: one real control plane per session, the simulated kubelet and
kruise-daemon on its node, a fresh namespace per test and a helper that makes running pods.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator, running_simulator
from tests.rest import Rest


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane()
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[k8s.ApiClient]:
    """An admin client for arranging and inspecting the cluster in tests."""
    with control_plane.api_client() as api:
        yield api


@pytest.fixture(scope="session")
def admin(control_plane: ControlPlane) -> Iterator[Rest]:
    """The admin as plain JSON over HTTPS, for tests that assert the apiserver's exact answer."""
    api = Rest(control_plane)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def _simulator(control_plane: ControlPlane) -> Iterator[Simulator]:
    with (
        control_plane.api_client() as api,
        running_simulator(api, control_plane.node_name) as sim,
    ):
        yield sim


@pytest.fixture
def simulator(_simulator: Simulator) -> Iterator[Simulator]:
    """The running simulator; failure injection set by a test is undone after it."""
    try:
        yield _simulator
    finally:
        _simulator.reset()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: k8s.ApiClient) -> str:
    """A fresh namespace per test (namespaces never finish terminating without a
    kube-controller-manager, so each test gets its own instead of cleaning up)."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{secrets.token_hex(3)}"
    k8s.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    return name


class MakePod(Protocol):
    def __call__(
        self,
        name: str,
        containers: tuple[str, ...] | list[str] = ("app",),
        *,
        ports: bool = False,
        pre_stop: bool = False,
        readiness_gate: bool = False,
        namespace: str | None = None,
        wait: bool = True,
    ) -> dict[str, Any]: ...


def pod_manifest(
    name: str,
    containers: tuple[str, ...] | list[str],
    *,
    ports: bool = False,
    pre_stop: bool = False,
    readiness_gate: bool = False,
) -> dict[str, Any]:
    specs: list[dict[str, Any]] = []
    for index, container in enumerate(containers):
        spec: dict[str, Any] = {"name": container, "image": f"example.test/{container}:1.0"}
        if ports:
            spec["ports"] = [{"name": f"http-{index}", "containerPort": 8080 + index}]
        if pre_stop:
            spec["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1"]}}}
        specs.append(spec)
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": specs, "terminationGracePeriodSeconds": 5},
    }
    if readiness_gate:
        pod["spec"]["readinessGates"] = [{"conditionType": "KruisePodReady"}]
    return pod


def read_pod(kube: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    resp = k8s.CoreV1Api(kube).read_namespaced_pod(name, namespace, _preload_content=False)
    pod: dict[str, Any] = json.loads(resp.data)
    return pod


def pod_is_running(pod: dict[str, Any]) -> bool:
    status = pod.get("status", {})
    statuses = status.get("containerStatuses") or []
    names = {c["name"] for c in pod["spec"]["containers"]}
    return (
        status.get("phase") == "Running"
        and {s["name"] for s in statuses} == names
        and all(s.get("containerID") for s in statuses)
    )


def wait_until(
    what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2
) -> Any:
    """Poll ``check`` until it returns something truthy; return that, or fail the test."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture
def make_pod(kube: k8s.ApiClient, namespace: str, _simulator: Simulator) -> MakePod:
    """Create a pod and (by default) wait until the simulated kubelet runs it."""

    def make(
        name: str,
        containers: tuple[str, ...] | list[str] = ("app",),
        *,
        ports: bool = False,
        pre_stop: bool = False,
        readiness_gate: bool = False,
        namespace: str | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        ns = namespace or namespace_default
        manifest = pod_manifest(
            name, containers, ports=ports, pre_stop=pre_stop, readiness_gate=readiness_gate
        )
        k8s.CoreV1Api(kube).create_namespaced_pod(ns, manifest)
        if not wait:
            return read_pod(kube, ns, name)

        def running() -> dict[str, Any] | None:
            pod = read_pod(kube, ns, name)
            return pod if pod_is_running(pod) else None

        result: dict[str, Any] = wait_until(f"pod {ns}/{name} running", running)
        return result

    namespace_default = namespace
    return make
