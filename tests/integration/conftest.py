"""Fixtures of the tests on the real control plane: one control plane per session, the simulated
kubelet and kruise-daemon on its node, a fresh namespace per test and a helper that makes running
pods; and, for the modules that make watches expire, a control plane of their own whose apiserver
has no watch cache. The unit tests (tests/unit/) never load this file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane, running_control_plane
from harness.simulator import Simulator, running_simulator
from tests.support.pods import MakePod, pod_is_running, pod_manifest, read_pod
from tests.support.rest import Rest
from tests.support.waiting import wait_until
from tests.support.watch_expiry import UNCACHED_APISERVER_ARGS, UncachedCluster


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


@pytest.fixture(scope="module")
def _uncached_cluster() -> Iterator[UncachedCluster]:
    with (
        running_control_plane(extra_apiserver_args=UNCACHED_APISERVER_ARGS) as plane,
        plane.api_client() as api,
        running_simulator(api, plane.node_name) as sim,
    ):
        yield UncachedCluster(plane, api, sim)


@pytest.fixture
def uncached_cluster(_uncached_cluster: UncachedCluster) -> Iterator[UncachedCluster]:
    """A control plane of the module's own whose apiserver has no watch cache, with its node
    agents, for tests that make the service's watch expire (tests/support/watch_expiry.py);
    failure injection on its simulator is undone after each test."""
    try:
        yield _uncached_cluster
    finally:
        _uncached_cluster.simulator.reset()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: k8s.ApiClient) -> str:
    """A fresh namespace per test (namespaces never finish terminating without a
    kube-controller-manager, so each test gets its own instead of cleaning up)."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{secrets.token_hex(3)}"
    k8s.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    return name


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
