"""Talking to the service in tests: starting it in this process against the control plane,
its URLs, following a restart to its end, the problem+json every error must be, and the CRRs
the apiserver holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from service.app import KubeFactory, create_app
from service.config import Settings
from tests.support.serving import serve
from tests.support.waiting import wait_until

GROUP = "apps.kruise.io"
PLURAL = "containerrecreaterequests"
PROBLEM = "application/problem+json"
ACTIVE_LABEL = "crr.apps.kruise.io/active"

Restart = dict[str, Any]
StartService = Callable[..., httpx.Client]


def start_service_in(
    stack: ExitStack,
    control_plane: ControlPlane,
    namespaces: list[str],
    *,
    kube_factory: KubeFactory | None = None,
    **overrides: Any,
) -> httpx.Client:
    settings = Settings(
        kubeconfig=overrides.pop("kubeconfig", control_plane.kubeconfig),  # or a FaultProxy's
        namespaces=namespaces,
        auth_mode=overrides.pop("auth_mode", "none"),  # the test_auth_*.py modules cover callers
        sse_heartbeat_seconds=overrides.pop("sse_heartbeat_seconds", 0.5),
        relist_backoff_initial_seconds=overrides.pop("relist_backoff_initial_seconds", 0.2),
        relist_backoff_max_seconds=overrides.pop("relist_backoff_max_seconds", 2.0),
        **overrides,
    )
    url = stack.enter_context(serve(create_app(settings, kube_factory=kube_factory)))
    client = stack.enter_context(httpx.Client(base_url=url, timeout=90))
    wait_until("the service to be ready", lambda: client.get("/readyz").status_code == 200)
    return client


def restarts_url(namespace: str, name: str = "") -> str:
    base = f"/v1/namespaces/{namespace}/restarts"
    return f"{base}/{name}" if name else base


def follow(client: httpx.Client, namespace: str, name: str, timeout: float = 90) -> list[Restart]:
    """Long-poll a restart to its end; returns every state seen."""
    deadline = time.monotonic() + timeout
    seen = [client.get(restarts_url(namespace, name)).json()]
    while not seen[-1]["finished"]:
        assert time.monotonic() < deadline, f"restart did not finish: {seen[-1]}"
        response = client.get(
            restarts_url(namespace, name),
            params={"wait": 20, "resourceVersion": seen[-1]["resourceVersion"]},
        )
        assert response.status_code == 200, response.text
        seen.append(response.json())
    return seen


def settled(api: httpx.Client, kube: k8s.ApiClient, namespace: str, name: str) -> Restart:
    """The restart once kruise is done with its CRR and the service holds that last version.
    kruise-manager writes a finished CRR once more (it drops the ``active`` label), so the
    finished snapshot a follower got is not always the last version."""

    def done() -> Restart | None:
        crr = k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, "v1beta1", namespace, PLURAL, name
        )
        served: Restart = api.get(restarts_url(namespace, name)).json()
        inactive = ACTIVE_LABEL not in crr["metadata"].get("labels", {})
        same = served["resourceVersion"] == crr["metadata"]["resourceVersion"]
        return served if inactive and same else None

    restart: Restart = wait_until(f"kruise to be done with {name}", done)
    return restart


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert "detail" in body
    if slug is not None:
        assert body["type"] == f"urn:crr-gateway:problem:{slug}", body
    return body


def crrs_in(kube: k8s.ApiClient, namespace: str, version: str = "v1beta1") -> list[Any]:
    listed = k8s.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, version, namespace, PLURAL
    )
    items: list[Any] = listed["items"]
    return items
