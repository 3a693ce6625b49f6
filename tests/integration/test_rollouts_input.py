"""What a rollout refuses, on the real control plane, with callers authenticated by real
service-account tokens (``auth_mode kubernetes``): every bad request a precise problem+json with
the right status and type, and nothing created. (The happy paths: test_rollouts.py; failures,
pause, resume and cancel at work: test_rollouts_failures.py.)"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.config import Settings
from tests.support.api import assert_problem
from tests.support.auth import (
    AUDIENCE,
    bearer,
    bind,
    caller_cluster_role,
    delete_cluster_role,
    ensure_namespace,
    ensure_service_account,
    may_create,
    mint,
    running_service,
)
from tests.support.rest import Rest
from tests.support.rollouts import (
    follow_rollout,
    in_state,
    rollout_objects,
    rollouts_url,
    run_pods,
)
from tests.support.waiting import wait_until

Obj = dict[str, Any]


@dataclass(frozen=True)
class World:
    """Namespace ``ns`` (served) with pods ``web-0``, ``web-1`` (containers app and sidecar)
    and ``web-2`` (app only), labelled app=web, and ``held-0``, ``held-1`` (app=held) that a
    PodDisruptionBudget keeps from any restart. Callers in namespace ``callers``: ``portal``
    may restart in ``ns`` (crr-gateway-caller), ``viewer`` may only read there."""

    ns: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def world(admin: Rest, kube: k8s.ApiClient, _simulator: Simulator) -> Iterator[World]:
    tag = secrets.token_hex(3)
    ns, callers = f"rollout-input-{tag}", f"rollout-callers-{tag}"
    for name in (ns, callers):
        ensure_namespace(admin, name)
    run_pods(kube, ns, ["web-0", "web-1"], {"app": "web"}, readiness_gate=False)
    run_pods(kube, ns, ["web-2"], {"app": "web"}, ["app"], readiness_gate=False)
    run_pods(kube, ns, ["held-0", "held-1"], {"app": "held"}, ["app"], readiness_gate=False)
    k8s.PolicyV1Api(kube).create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "held"},
            "spec": {"minAvailable": "100%", "selector": {"matchLabels": {"app": "held"}}},
        },
    )
    caller = caller_cluster_role(admin, tag)
    viewer = f"crr-gateway-viewer-{tag}"
    admin.ok(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "metadata": {"name": viewer},
            "rules": [
                {
                    "apiGroups": ["apps.kruise.io"],
                    "resources": ["containerrecreaterequests"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
    )
    for account, role in (("portal", caller), ("viewer", viewer)):
        ensure_service_account(admin, callers, account)
        bind(admin, ns, role, callers, account)
    wait_until("the portal's binding", lambda: may_create(admin, callers, "portal", ns))
    tokens = {who: mint(admin, callers, who, [AUDIENCE]) for who in ("portal", "viewer")}
    try:
        yield World(ns, tokens)
    finally:
        delete_cluster_role(admin, caller)
        delete_cluster_role(admin, viewer)


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane, world: World) -> Iterator[httpx.Client]:
    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[world.ns],
        auth_mode="kubernetes",
        auth_audiences=[AUDIENCE],
        rate_limit_per_second=0,  # one caller sends them all: not about rate limits
        relist_backoff_initial_seconds=0.2,
        relist_backoff_max_seconds=2.0,
    )
    with running_service(settings) as client:
        client.headers.update(bearer(world.tokens["portal"]))
        yield client


def names(kube: k8s.ApiClient, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in rollout_objects(kube, namespace)}


WEB = {"selector": {"matchLabels": {"app": "web"}}}

# (id, body, status, problem type, words the detail must hold)
REFUSED: list[tuple[str, Obj, int, str, list[str]]] = [
    (
        "target-and-selector",
        {"target": {"kind": "Deployment", "name": "web"}, **WEB},
        422,
        "invalid-request",
        ["exactly one of target", "not both"],
    ),
    ("neither", {"containers": ["app"]}, 422, "invalid-request", ["exactly one of target"]),
    (
        "unknown-kind",
        {"target": {"kind": "CronJob", "name": "web"}},
        422,
        "invalid-request",
        ["CronJob", "supported kinds", "CloneSet"],
    ),
    (
        "kind-of-another-group",
        {"target": {"kind": "CloneSet", "name": "web", "apiVersion": "apps/v1"}},
        422,
        "invalid-request",
        ["apps/v1 CloneSet"],
    ),
    (
        "no-such-workload",
        {"target": {"kind": "StatefulSet", "name": "nope"}},
        404,
        "workload-not-found",
        ["StatefulSet nope not found"],
    ),
    (
        "selector-matching-nothing",
        {"selector": {"matchLabels": {"app": "nothing"}}},
        422,
        "no-pods-selected",
        ["matches no pods"],
    ),
    (
        "empty-selector",
        {"selector": {}},
        422,
        "invalid-request",
        ["every pod of the namespace"],
    ),
    ("max-unavailable-0", {**WEB, "maxUnavailable": 0}, 422, "invalid-request", ["at least 1"]),
    ("max-unavailable-0%", {**WEB, "maxUnavailable": "0%"}, 422, "invalid-request", ["0%"]),
    ("max-unavailable-abc", {**WEB, "maxUnavailable": "abc"}, 422, "invalid-request", ["abc"]),
    ("max-unavailable-101%", {**WEB, "maxUnavailable": "101%"}, 422, "invalid-request", ["101%"]),
    ("max-unavailable-true", {**WEB, "maxUnavailable": True}, 422, "invalid-request", []),
    ("no-containers", {**WEB, "containers": []}, 422, "invalid-request", ["containers is empty"]),
    (
        "container-missing-from-some-pods",
        {**WEB, "containers": ["app", "sidecar"]},
        422,
        "invalid-request",
        ["missing from 1 of the selected pods", "web-2: sidecar"],
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "slug", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["create", "dry-run"])
def test_bad_input_is_a_precise_problem_and_creates_nothing(
    api: httpx.Client,
    kube: k8s.ApiClient,
    world: World,
    body: Obj,
    status: int,
    slug: str,
    words: list[str],
    dry_run: bool,
) -> None:
    existing = names(kube, world.ns)
    params = {"dryRun": "true"} if dry_run else {}

    problem = assert_problem(
        api.post(rollouts_url(world.ns), json=body, params=params), status, slug
    )

    for word in words:
        assert word in problem["detail"], problem
    assert names(kube, world.ns) == existing


def test_a_container_missing_from_some_pods_is_named_per_pod(
    api: httpx.Client, world: World
) -> None:
    response = api.post(rollouts_url(world.ns), json={**WEB, "containers": ["sidecar"]})
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["podsMissingContainers"] == {"web-2": ["sidecar"]}


def test_an_unknown_rollout_is_404(api: httpx.Client, world: World) -> None:
    for response in (
        api.get(rollouts_url(world.ns, "no-such-rollout")),
        api.post(rollouts_url(world.ns, "no-such-rollout", "pause")),
        api.post(rollouts_url(world.ns, "no-such-rollout", "cancel")),
    ):
        problem = assert_problem(response, 404, "rollout-not-found")
        assert "no-such-rollout" in problem["detail"]


def test_an_overlapping_rollout_is_409_and_a_finished_one_cannot_be_paused(
    api: httpx.Client, kube: k8s.ApiClient, world: World
) -> None:
    held = {"selector": {"matchLabels": {"app": "held"}}}
    created = api.post(rollouts_url(world.ns), json=held)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    # the disruption budget allows no restart: the rollout stays active, and says why
    waiting = follow_rollout(
        api, world.ns, name, lambda r: "PodDisruptionBudget held" in r["message"]
    )
    assert waiting["phase"] == "Progressing" and in_state(waiting, "Waiting") == [
        "held-0",
        "held-1",
    ]
    existing = names(kube, world.ns)

    # another rollout over one of its pods, however selected, is refused and names it
    overlapping = {
        "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["held"]}]}
    }
    for params in ({}, {"dryRun": "true"}):
        response = api.post(rollouts_url(world.ns), json=overlapping, params=params)
        problem = assert_problem(response, 409, "rollout-overlaps")
        assert problem["activeRollout"] == name and name in problem["detail"]
    assert names(kube, world.ns) == existing

    cancelled = api.post(rollouts_url(world.ns, name, "cancel"))
    assert cancelled.status_code == 200, cancelled.text
    done = follow_rollout(api, world.ns, name)
    assert done["phase"] == "Cancelled"
    assert in_state(done, "Skipped") == ["held-0", "held-1"]

    for action in ("pause", "resume", "cancel"):
        response = api.post(rollouts_url(world.ns, name, action))
        problem = assert_problem(response, 409, "rollout-finished")
        assert problem["phase"] == "Cancelled" and name in problem["detail"]
    assert api.get(rollouts_url(world.ns, name)).json()["phase"] == "Cancelled"
    # once it has finished, the pods are free again
    again = api.post(rollouts_url(world.ns), json=overlapping, params={"dryRun": "true"})
    assert again.status_code == 200, again.text


def test_a_caller_without_the_right_is_403_and_changes_nothing(
    api: httpx.Client, kube: k8s.ApiClient, world: World
) -> None:
    viewer = bearer(world.tokens["viewer"])
    created = api.post(rollouts_url(world.ns), json={"selector": {"matchLabels": {"app": "held"}}})
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    existing = names(kube, world.ns)

    # the viewer may read rollouts (get on restarts), not start or steer one (create)
    assert api.get(rollouts_url(world.ns, name), headers=viewer).status_code == 200
    assert api.get(rollouts_url(world.ns), headers=viewer).status_code == 200
    refused = [
        api.post(rollouts_url(world.ns), json=WEB, headers=viewer),
        api.post(rollouts_url(world.ns), json=WEB, headers=viewer, params={"dryRun": "true"}),
        *(api.post(rollouts_url(world.ns, name, a), headers=viewer) for a in ("pause", "cancel")),
    ]
    for response in refused:
        problem = assert_problem(response, 403, "caller-forbidden")
        assert "viewer" in problem["detail"]
    assert names(kube, world.ns) == existing
    assert not api.get(rollouts_url(world.ns, name)).json()["paused"]
    # without a token at all: 401
    anonymous = api.post(rollouts_url(world.ns), json=WEB, headers={"Authorization": ""})
    assert_problem(anonymous, 401, "unauthenticated")

    assert api.post(rollouts_url(world.ns, name, "cancel")).status_code == 200
    assert follow_rollout(api, world.ns, name)["phase"] == "Cancelled"
