"""Both CRR versions: the service uses what the cluster's discovery serves, preferring v1beta1.

The kruise v1.9.0 CRDs installed by the harness serve ``v1alpha1`` and ``v1beta1`` (storage).
Tests change the installed CRD so discovery offers one version less or more, show a new
service picks what discovery then serves and a running one follows the change, and restore
the CRD. A restart made and followed as v1alpha1 runs with v1beta1 still served: kruise v1.9.0
moves CRRs through v1beta1 only (see that test).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.kube.adapter import KubeClient
from tests.support.api import (
    GROUP,
    PLURAL,
    Restart,
    crrs_in,
    follow,
    restarts_url,
    settled,
    start_service_in,
)
from tests.support.pods import MakePod
from tests.support.sse import event_stream
from tests.support.waiting import wait_until

CRD = "containerrecreaterequests.apps.kruise.io"


def read_crd(kube: k8s.ApiClient) -> dict[str, Any]:
    response = k8s.ApiextensionsV1Api(kube).read_custom_resource_definition(
        CRD, _preload_content=False
    )
    crd: dict[str, Any] = json.loads(response.data)
    return crd


def replace_versions(kube: k8s.ApiClient, versions: list[dict[str, Any]]) -> None:
    crd = read_crd(kube)
    crd["spec"]["versions"] = versions
    k8s.ApiextensionsV1Api(kube).replace_custom_resource_definition(CRD, crd)


def discovery_serves(control_plane: ControlPlane, version: str) -> bool:
    status, body = control_plane.raw_get(f"/apis/apps.kruise.io/{version}")
    if status != 200:
        return False
    return any(r["name"] == "containerrecreaterequests" for r in json.loads(body)["resources"])


@pytest.fixture
def original_versions(
    kube: k8s.ApiClient, control_plane: ControlPlane
) -> Iterator[list[dict[str, Any]]]:
    versions: list[dict[str, Any]] = read_crd(kube)["spec"]["versions"]
    try:
        yield copy.deepcopy(versions)
    finally:
        replace_versions(kube, versions)
        for v in versions:
            if v["served"]:
                name = v["name"]
                wait_until(
                    f"discovery to serve {name} again",
                    lambda name=name: discovery_serves(control_plane, name),  # type: ignore[misc]
                )


def service(stack: ExitStack, control_plane: ControlPlane, namespace: str) -> httpx.Client:
    return start_service_in(stack, control_plane, [namespace])


def test_the_service_prefers_v1beta1_and_falls_back_to_v1alpha1_through_discovery(
    kube: k8s.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    make_pod: MakePod,
    original_versions: list[dict[str, Any]],
) -> None:
    make_pod("web-0", ["app"])
    names = {v["name"]: v for v in original_versions}
    assert "v1alpha1" in names

    if "v1beta1" not in names:
        # the premise of older kruise releases: only v1alpha1. Add a served, non-storage
        # v1beta1 (the same schema) and show the service moves to it
        assert discovery_serves(control_plane, "v1alpha1")
        with ExitStack() as stack:
            api = service(stack, control_plane, namespace)
            created = api.post(restarts_url(namespace), json={"pod": "web-0"})
            assert created.status_code == 201, created.text
            assert created.json()["apiVersion"] == "v1alpha1"
            follow(api, namespace, created.json()["name"])
        beta = copy.deepcopy(names["v1alpha1"])
        beta.update(name="v1beta1", served=True, storage=False)
        replace_versions(kube, [*original_versions, beta])
        wait_until("discovery to serve v1beta1", lambda: discovery_serves(control_plane, "v1beta1"))
        with ExitStack() as stack:
            api = service(stack, control_plane, namespace)
            created = api.post(restarts_url(namespace), json={"pod": "web-0"})
            assert created.status_code == 201, created.text
            assert created.json()["apiVersion"] == "v1beta1"
            got = api.get(restarts_url(namespace, created.json()["name"])).json()
            assert got["apiVersion"] == "v1beta1"
        return

    # kruise v1.9.0 serves both: the service takes v1beta1 ...
    assert discovery_serves(control_plane, "v1beta1")
    with ExitStack() as stack:
        api = service(stack, control_plane, namespace)
        created = api.post(restarts_url(namespace), json={"pod": "web-0"})
        assert created.status_code == 201, created.text
        assert created.json()["apiVersion"] == "v1beta1"
        final = follow(api, namespace, created.json()["name"])[-1]
        assert final["result"] == "Succeeded"
        assert final["apiVersion"] == "v1beta1"

    # ... and when discovery stops offering v1beta1, a new service uses v1alpha1
    replace_versions(
        kube,
        [{**v, "served": v["name"] != "v1beta1"} for v in copy.deepcopy(original_versions)],
    )
    wait_until("discovery to drop v1beta1", lambda: not discovery_serves(control_plane, "v1beta1"))
    with ExitStack() as stack:
        api = service(stack, control_plane, namespace)
        created = api.post(
            restarts_url(namespace), params={"dryRun": "true"}, json={"pod": "web-0"}
        )
        assert created.status_code == 200, created.text
        assert created.json()["apiVersion"] == "v1alpha1"
        created = api.post(restarts_url(namespace), json={"pod": "web-0", "name": "via-alpha"})
        assert created.status_code == 201, created.text
        restart = created.json()
        assert restart["apiVersion"] == "v1alpha1"
        assert restart["containers"] == ["app"]
        assert restart["podUID"]  # kruise's webhook handled the v1alpha1 create
        got = api.get(restarts_url(namespace, "via-alpha")).json()  # watched as v1alpha1
        assert got["apiVersion"] == "v1alpha1"
        assert api.delete(restarts_url(namespace, "via-alpha")).status_code == 200


class DiscoveredV1alpha1(KubeClient):
    """The real adapter as it is on a cluster whose discovery offers CRRs in v1alpha1 only
    (kruise releases before v1beta1): every CRR call goes out as v1alpha1."""

    def crr_version(self, *, refresh: bool = False) -> str:
        return "v1alpha1"


def test_a_restart_made_and_followed_as_v1alpha1_reaches_succeeded(
    control_plane: ControlPlane, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    """v1alpha1 end to end: the service creates, watches, streams and reads its restart as
    v1alpha1 until kruise reports it Succeeded.

    The cluster still serves v1beta1 here, because nothing in kruise v1.9.0 moves a CRR
    otherwise: kruise-manager's CRR controller (and the container snapshot it writes) and
    kruise-daemon work with v1beta1 only, so on a cluster serving v1alpha1 alone a CRR is
    admitted by the webhook and then never touched (the simulated daemon does the same). What
    the service would do there is what it does after discovery found v1alpha1 only, which is
    what ``DiscoveredV1alpha1`` tells it; the apiserver serves the v1alpha1 view of every CRR
    write kruise makes in v1beta1."""
    make_pod("web-0", ["app"])
    with ExitStack() as stack:
        api = start_service_in(
            stack,
            control_plane,
            [namespace],
            kube_factory=lambda settings: DiscoveredV1alpha1(
                kubeconfig=settings.kubeconfig, request_timeout=settings.request_timeout_seconds
            ),
        )
        created = api.post(restarts_url(namespace), json={"pod": "web-0", "name": "as-alpha"})
        assert created.status_code == 201, created.text
        assert created.json()["apiVersion"] == "v1alpha1"
        assert created.json()["podUID"]  # kruise's webhook admitted it as v1alpha1
        with event_stream(api, restarts_url(namespace, "as-alpha") + "/events") as stream:
            snapshots = stream.read_to_end()
        polled = follow(api, namespace, "as-alpha")
        assert {s.restart["apiVersion"] for s in snapshots} == {"v1alpha1"}
        assert snapshots[-1].restart["result"] == "Succeeded", snapshots[-1].restart
        assert polled[-1]["result"] == "Succeeded"
        assert polled[-1]["apiVersion"] == "v1alpha1"
        assert {(s["name"], s["phase"]) for s in polled[-1]["containerStates"]} == {
            ("app", "Succeeded")
        }
        # the same CRR, as kruise works with it; the service ends up at its last version
        (crr,) = crrs_in(kube, namespace, "v1beta1")
        assert crr["metadata"]["name"] == "as-alpha"
        assert crr["status"]["phase"] == "Completed"
        assert settled(api, kube, namespace, "as-alpha")["apiVersion"] == "v1alpha1"


def test_v1beta1_going_away_while_the_service_runs(
    kube: k8s.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
    original_versions: list[dict[str, Any]],
) -> None:
    """The running service follows discovery: when v1beta1 is no longer served, its watch
    moves to v1alpha1 without losing or ending the restarts it holds, and creates go out as
    v1alpha1; when v1beta1 is back, kruise finishes what was made meanwhile."""
    make_pod("web-0", ["app"])
    make_pod("web-1", ["app"])
    simulator.daemon_down = True  # the restarts stay unfinished across the switch
    with ExitStack() as stack:
        # its watches end every second, so one opened on v1beta1 does not outlive v1beta1 long
        api = start_service_in(stack, control_plane, [namespace], watch_timeout_seconds=1)
        before = api.post(restarts_url(namespace), json={"pod": "web-0"})
        assert before.status_code == 201, before.text
        name = before.json()["name"]
        assert before.json()["apiVersion"] == "v1beta1"

        replace_versions(
            kube,
            [{**v, "served": v["name"] != "v1beta1"} for v in copy.deepcopy(original_versions)],
        )
        wait_until(
            "discovery to drop v1beta1", lambda: not discovery_serves(control_plane, "v1beta1")
        )

        # the watch moves to v1alpha1: a change made now reaches the service as v1alpha1
        # (until the apiserver ends it, a watch opened on v1beta1 still delivers as v1beta1)
        crrs = k8s.CustomObjectsApi(kube)
        changes = itertools.count()

        def held_as_v1alpha1() -> Restart | None:
            label = {"metadata": {"labels": {"change": str(next(changes))}}}
            crrs.patch_namespaced_custom_object(GROUP, "v1alpha1", namespace, PLURAL, name, label)
            restart: Restart = api.get(restarts_url(namespace, name)).json()
            return restart if restart["apiVersion"] == "v1alpha1" else None

        held = wait_until("a change to reach the service through v1alpha1", held_as_v1alpha1)
        assert held["finished"] is False and held["result"] is None, held  # not a tombstone
        assert held["podUID"] == before.json()["podUID"]
        wait_until("the service to be ready", lambda: api.get("/readyz").status_code == 200)
        during = api.post(restarts_url(namespace), json={"pod": "web-1"})
        assert during.status_code == 201, during.text
        assert during.json()["apiVersion"] == "v1alpha1"
        assert during.json()["podUID"]
        listed = [r["name"] for r in api.get(restarts_url(namespace)).json()["items"]]
        assert sorted(listed) == sorted([name, during.json()["name"]])

        # v1beta1 back: kruise-manager and the daemon take both up again
        replace_versions(kube, original_versions)
        wait_until("discovery to serve v1beta1", lambda: discovery_serves(control_plane, "v1beta1"))
        simulator.daemon_down = False
        for restart in (name, during.json()["name"]):
            final = follow(api, namespace, restart, timeout=120)[-1]
            assert final["result"] == "Succeeded", final
    assert {c["status"]["phase"] for c in crrs_in(kube, namespace)} == {"Completed"}
