"""Both CRR versions: the service uses what the cluster's discovery serves, preferring v1beta1.

The kruise v1.9.0 CRDs installed by the harness serve ``v1alpha1`` and ``v1beta1`` (storage).
Each test changes the installed CRD so discovery offers one version less or more, shows a
new service picks what discovery then serves, and restores the CRD.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from tests.support.api import follow, restarts_url, start_service_in
from tests.support.pods import MakePod
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
