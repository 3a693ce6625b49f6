"""Callers in ``kubernetes`` mode, on the real control plane with real tokens: TokenReview
(audience-scoped) and SubjectAccessReview decide, each cell of the caller matrix its own test.
Denials answer before any lookup, so existing and missing pods get the same body."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.config import Settings
from tests.support.auth import (
    AUDIENCE,
    assert_problem,
    bearer,
    bind,
    caller_cluster_role,
    delete_cluster_role,
    ensure_namespace,
    ensure_service_account,
    may_create,
    mint,
    run_pod,
    running_service,
)
from tests.support.rest import Rest
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class World:
    """Namespaces A and B (both served), callers in namespace ``callers``: ``portal`` bound to
    crr-gateway-caller in A only, ``nobody`` bound nowhere."""

    a: str
    b: str
    callers: str
    tokens: dict[str, str | None]


@pytest.fixture(scope="module")
def world(admin: Rest, _simulator: Simulator) -> Iterator[World]:
    tag = secrets.token_hex(3)
    a, b, callers = f"authz-a-{tag}", f"authz-b-{tag}", f"callers-{tag}"
    for name in (a, b, callers):
        ensure_namespace(admin, name)
    for namespace in (a, b):
        run_pod(admin, namespace, "web-0", ["app", "sidecar"])
    for account in ("portal", "nobody"):
        ensure_service_account(admin, callers, account)
    role = caller_cluster_role(admin, tag)
    bind(admin, a, role, callers, "portal")
    wait_until("the portal's binding", lambda: may_create(admin, callers, "portal", a))
    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "not-a-token",
        "portal": mint(admin, callers, "portal", [AUDIENCE]),
        "nobody": mint(admin, callers, "nobody", [AUDIENCE]),
        # valid, but for the apiserver (the default audience) or another service
        "portal-apiserver-audience": mint(admin, callers, "portal"),
        "portal-other-audience": mint(admin, callers, "portal", ["another-service"]),
    }
    try:
        yield World(a, b, callers, tokens)
    finally:
        delete_cluster_role(admin, role)


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane, world: World) -> Iterator[httpx.Client]:
    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[world.a, world.b],
        auth_mode="kubernetes",
        auth_audiences=[AUDIENCE],
        relist_backoff_initial_seconds=0.2,
        relist_backoff_max_seconds=2.0,
    )
    with running_service(settings) as client:
        yield client


def create(api: httpx.Client, namespace: str, token: str | None, pod: str) -> httpx.Response:
    return api.post(
        f"/v1/namespaces/{namespace}/restarts",
        json={"pod": pod, "containers": ["app"]},
        headers=bearer(token),
    )


# (token, namespace "a" or "b", expected status, problem slug)
DENIED = [
    ("none", "a", 401, "unauthenticated"),
    ("garbage", "a", 401, "unauthenticated"),
    ("portal-apiserver-audience", "a", 401, "unauthenticated"),
    ("portal-other-audience", "a", 401, "unauthenticated"),
    ("nobody", "a", 403, "caller-forbidden"),
    ("nobody", "b", 403, "caller-forbidden"),
    ("portal", "b", 403, "caller-forbidden"),
]


@pytest.mark.parametrize(
    ("who", "where", "status", "slug"), DENIED, ids=[f"{w}-in-{n}" for w, n, _, _ in DENIED]
)
def test_denied_create_reveals_nothing_about_the_pod(
    api: httpx.Client, world: World, who: str, where: str, status: int, slug: str
) -> None:
    namespace = world.a if where == "a" else world.b
    token = world.tokens[who]
    existing = assert_problem(create(api, namespace, token, "web-0"), status, slug)
    missing = assert_problem(create(api, namespace, token, "no-such-pod"), status, slug)
    assert existing == missing
    assert "web-0" not in existing["detail"]


@pytest.mark.parametrize(
    ("who", "where", "status", "slug"), DENIED, ids=[f"{w}-in-{n}" for w, n, _, _ in DENIED]
)
def test_denied_reads_and_deletes_reveal_nothing_either(
    api: httpx.Client, world: World, who: str, where: str, status: int, slug: str
) -> None:
    namespace = world.a if where == "a" else world.b
    headers = bearer(world.tokens[who])
    base = f"/v1/namespaces/{namespace}/restarts"
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/no-such-restart"),
        ("GET", f"{base}/no-such-restart/events"),
        ("DELETE", f"{base}/no-such-restart"),
    ]:
        body = assert_problem(api.request(method, path, headers=headers), status, slug)
        assert "no-such-restart" not in body["detail"], (method, path)


def test_caller_bound_in_a_restarts_in_a(api: httpx.Client, world: World) -> None:
    response = create(api, world.a, world.tokens["portal"], "web-0")
    assert response.status_code == 201, response.text
    restart = response.json()
    assert restart["requestedBy"] == f"system:serviceaccount:{world.callers}:portal"
    headers = bearer(world.tokens["portal"])
    url = f"/v1/namespaces/{world.a}/restarts/{restart['name']}"
    assert api.get(url, headers=headers).status_code == 200
    assert api.get(f"/v1/namespaces/{world.a}/restarts", headers=headers).status_code == 200
    done = api.get(url, params={"wait": 30}, headers=headers)
    while not done.json()["finished"]:
        done = api.get(url, params={"wait": 30}, headers=headers)
    assert api.delete(url, headers=headers).status_code == 200


def test_caller_bound_in_a_cannot_restart_in_b_even_a_missing_pod(
    api: httpx.Client, world: World
) -> None:
    token = world.tokens["portal"]
    assert_problem(create(api, world.b, token, "web-0"), 403, "caller-forbidden")
    body = assert_problem(create(api, world.b, token, "no-such-pod"), 403, "caller-forbidden")
    assert body["detail"] == (
        f"system:serviceaccount:{world.callers}:portal may not create "
        f"containerrecreaterequests.apps.kruise.io in namespace {world.b}"
    )


def test_a_namespace_the_service_does_not_serve_is_403_before_any_access_review(
    api: httpx.Client, world: World
) -> None:
    assert_problem(
        create(api, "kube-system", world.tokens["portal"], "web-0"), 403, "namespace-not-served"
    )
    # a valid token is required first: nobody unauthenticated learns which namespaces are served
    for who in ("none", "garbage", "portal-other-audience"):
        served = assert_problem(create(api, world.a, world.tokens[who], "web-0"), 401)
        unserved = assert_problem(create(api, "kube-system", world.tokens[who], "web-0"), 401)
        assert served["type"] == unserved["type"] == "urn:crr-gateway:problem:unauthenticated"
        assert served["detail"] == unserved["detail"], who


def test_a_non_bearer_authorization_is_401(api: httpx.Client, world: World) -> None:
    response = api.post(
        f"/v1/namespaces/{world.a}/restarts",
        json={"pod": "web-0"},
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
    )
    assert_problem(response, 401, "unauthenticated")


def test_unauthenticated_requests_do_not_reach_body_validation(
    api: httpx.Client, world: World
) -> None:
    response = api.post(f"/v1/namespaces/{world.a}/restarts", json={"bogus": True})
    assert_problem(response, 401, "unauthenticated")


def test_custom_resource_attributes_restart_on_pods(
    control_plane: ControlPlane, admin: Rest, world: World, tmp_path: Path
) -> None:
    """kube-rbac-proxy style: the service asks for verb ``restart`` on ``pods`` instead; the
    caller role (CRR verbs) no longer grants it, a Role with exactly that verb does."""
    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[world.a],
        auth_mode="kubernetes",
        auth_audiences=[AUDIENCE],
        authz_group="",
        authz_resource="pods",
        authz_verb="restart",
    )
    token = world.tokens["portal"]
    with running_service(settings) as client:
        body = assert_problem(create(client, world.a, token, "web-0"), 403, "caller-forbidden")
        assert "may not restart pods in namespace" in body["detail"]
        admin.ok(
            "POST",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{world.a}/roles",
            {
                "metadata": {"name": "restart-pods"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["restart"]}],
            },
        )
        admin.ok(
            "POST",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{world.a}/rolebindings",
            {
                "metadata": {"name": "portal-restart-pods"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "restart-pods",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "portal", "namespace": world.callers}
                ],
            },
        )

        def listed() -> bool:  # the denial is cached briefly, the binding lands a bit later
            response = client.get(f"/v1/namespaces/{world.a}/restarts", headers=bearer(token))
            return response.status_code == 200

        wait_until("the restart verb to be granted", listed)
