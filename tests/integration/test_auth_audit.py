"""Audit and guardrails on the real control plane: one JSON line per create and delete (logger
``crr_gateway.audit``), request ids in and out, an Event on the pod, annotations on the CRR,
and 429 with ``Retry-After`` when a caller's rate or a namespace's active restarts pass the
limits. Callers come from a static tokens file (the Kubernetes side is in
test_auth_kubernetes.py)."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.config import Settings
from tests.support.auth import (
    assert_problem,
    bearer,
    ensure_namespace,
    ensure_service_account,
    mint,
    new_token,
    run_pod,
    running_service,
    token_kubeconfig,
    tokens_file,
)
from tests.support.pods import MakePod
from tests.support.rest import Rest
from tests.support.waiting import wait_until

Obj = dict[str, Any]
PODS = ("web-0", "web-1", "web-2", "web-3", "web-4")
SERVED_NAMESPACE_ROLE = Path(__file__).resolve().parents[2] / "deploy/served-namespace/role.yaml"


@dataclass(frozen=True)
class World:
    a: str
    b: str
    file: Path
    alice: str
    ops: str
    pods: dict[str, Obj]


@pytest.fixture(scope="module")
def world(admin: Rest, _simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> World:
    tag = secrets.token_hex(3)
    a, b = f"audit-a-{tag}", f"audit-b-{tag}"
    ensure_namespace(admin, a)
    ensure_namespace(admin, b)
    pods = {name: run_pod(admin, a, name, ["app", "sidecar"]) for name in PODS}
    alice, ops = new_token(), new_token()
    path = tokens_file(
        tmp_path_factory.mktemp("audit") / "tokens.yaml",
        {
            alice: {"user": "alice", "groups": ["team-a", "oncall"], "namespaces": [a]},
            ops: {"user": "ops", "groups": [], "namespaces": ["*"]},
        },
    )
    return World(a, b, path, alice, ops, pods)


def settings_for(plane: ControlPlane, world: World, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kubeconfig": plane.kubeconfig,
        "namespaces": [world.a, world.b],
        "auth_mode": "static",
        "auth_tokens_file": world.file,
        "relist_backoff_initial_seconds": 0.2,
        "relist_backoff_max_seconds": 2.0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane, world: World) -> Iterator[httpx.Client]:
    with running_service(settings_for(control_plane, world)) as client:
        yield client


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="crr_gateway.audit")
    return caplog


def audit_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[Obj]:
    lines = [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "crr_gateway.audit"
    ]
    return [line for line in lines if line["requestId"] == request_id]


def one_audit_line(caplog: pytest.LogCaptureFixture, request_id: str) -> Obj:
    lines: list[Obj] = wait_until(
        f"the audit line of {request_id}", lambda: audit_lines(caplog, request_id), timeout=5
    )
    assert len(lines) == 1, lines
    return lines[0]


def events_on(admin: Rest, namespace: str, pod: str, reason: str) -> list[Obj]:
    listed = admin.ok("GET", f"/api/v1/namespaces/{namespace}/events")
    return [
        e
        for e in listed["items"]
        if e["involvedObject"].get("name") == pod and e["reason"] == reason
    ]


def test_a_create_is_audited_and_leaves_an_event_and_annotations(
    api: httpx.Client, admin: Rest, world: World, audit: pytest.LogCaptureFixture
) -> None:
    request_id = "deploy-42.attempt_1"
    response = api.post(
        f"/v1/namespaces/{world.a}/restarts",
        json={"pod": "web-0", "containers": ["app"], "reason": "config reload"},
        headers={**bearer(world.alice), "X-Request-Id": request_id},
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == request_id
    restart = response.json()
    assert restart["requestedBy"] == "alice"
    assert restart["reason"] == "config reload"

    line = one_audit_line(audit, request_id)
    assert line.pop("time")
    assert line == {
        "requestId": request_id,
        "action": "create",
        "caller": "alice",
        "groups": ["team-a", "oncall"],
        "namespace": world.a,
        "pod": "web-0",
        "containers": ["app"],
        "reason": "config reload",
        "restart": restart["name"],
        "dryRun": False,
        "status": 201,
        "outcome": "success",
    }

    crr = admin.ok(
        "GET",
        f"/apis/apps.kruise.io/v1beta1/namespaces/{world.a}/containerrecreaterequests/"
        f"{restart['name']}",
    )
    annotations = crr["metadata"]["annotations"]
    assert annotations["crr-gateway.io/requested-by"] == "alice"
    assert annotations["crr-gateway.io/reason"] == "config reload"
    assert annotations["crr-gateway.io/request-id"] == request_id

    (event,) = wait_until(
        "the RestartRequested event",
        lambda: events_on(admin, world.a, "web-0", "RestartRequested"),
    )
    assert event["type"] == "Normal"
    assert event["involvedObject"]["kind"] == "Pod"
    assert event["involvedObject"]["uid"] == world.pods["web-0"]["metadata"]["uid"]
    assert event["source"]["component"] == "crr-gateway"
    for word in ("alice", "app", restart["name"], "config reload", request_id):
        assert word in event["message"], word
    assert not event["metadata"]["name"].endswith(".")


def test_a_delete_is_audited_and_leaves_an_event(
    api: httpx.Client, admin: Rest, world: World, audit: pytest.LogCaptureFixture
) -> None:
    created = api.post(
        f"/v1/namespaces/{world.a}/restarts", json={"pod": "web-1"}, headers=bearer(world.alice)
    )
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    deleted = api.delete(
        f"/v1/namespaces/{world.a}/restarts/{name}",
        headers={**bearer(world.alice), "X-Request-Id": "cancel-1"},
    )
    assert deleted.status_code == 200, deleted.text
    line = one_audit_line(audit, "cancel-1")
    assert (line["action"], line["caller"], line["restart"], line["pod"]) == (
        "delete",
        "alice",
        name,
        "web-1",
    )
    assert (line["status"], line["outcome"]) == (200, "success")
    (event,) = wait_until(
        "the RestartDeleted event", lambda: events_on(admin, world.a, "web-1", "RestartDeleted")
    )
    assert "alice" in event["message"] and name in event["message"]


def test_refused_creates_are_audited_too(
    api: httpx.Client, world: World, audit: pytest.LogCaptureFixture
) -> None:
    denied = api.post(
        f"/v1/namespaces/{world.b}/restarts",
        json={"pod": "web-0", "reason": "try"},
        headers={**bearer(world.alice), "X-Request-Id": "denied-1"},
    )
    assert_problem(denied, 403, "caller-forbidden")
    line = one_audit_line(audit, "denied-1")
    assert (line["namespace"], line["pod"], line["reason"]) == (world.b, "web-0", "try")
    assert (line["status"], line["outcome"]) == (403, "denied")

    invalid = api.post(
        f"/v1/namespaces/{world.a}/restarts",
        json={"pod": "web-2", "containers": ["nope"]},
        headers={**bearer(world.alice), "X-Request-Id": "invalid-1"},
    )
    assert_problem(invalid, 422, "unknown-containers")
    line = one_audit_line(audit, "invalid-1")
    assert (line["status"], line["outcome"], line["containers"]) == (422, "failure", ["nope"])

    missing = api.delete(
        f"/v1/namespaces/{world.a}/restarts/no-such-restart",
        headers={**bearer(world.alice), "X-Request-Id": "missing-1"},
    )
    assert_problem(missing, 404, "restart-not-found")
    assert one_audit_line(audit, "missing-1")["restart"] == "no-such-restart"


def test_unauthenticated_requests_and_reads_write_no_audit_line(
    api: httpx.Client, world: World, audit: pytest.LogCaptureFixture
) -> None:
    api.post(
        f"/v1/namespaces/{world.a}/restarts",
        json={"pod": "web-0"},
        headers={"X-Request-Id": "anonymous-1"},
    )
    api.get(
        f"/v1/namespaces/{world.a}/restarts",
        headers={**bearer(world.alice), "X-Request-Id": "read-1"},
    )
    api.get("/healthz", headers={"X-Request-Id": "health-1"})
    assert audit_lines(audit, "anonymous-1") == []
    assert audit_lines(audit, "read-1") == []


@pytest.mark.parametrize(
    "incoming",
    [None, "", "has space", "semi;colon", "ünïcode", "x" * 129, "a/b"],
    ids=["missing", "empty", "space", "semicolon", "unicode", "too-long", "slash"],
)
def test_an_insane_request_id_is_replaced(
    api: httpx.Client, world: World, incoming: str | None
) -> None:
    headers = [] if incoming is None else [(b"X-Request-Id", incoming.encode())]
    response = api.get("/healthz", headers=headers)
    echoed = response.headers["x-request-id"]
    assert echoed != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_a_sane_request_id_is_echoed_on_every_answer(api: httpx.Client, world: World) -> None:
    longest = "A-z.0_9" * 18 + "ab"
    assert len(longest) == 128
    assert api.get("/healthz", headers={"X-Request-Id": longest}).headers["x-request-id"] == longest
    problem = api.get(f"/v1/namespaces/{world.a}/restarts", headers={"X-Request-Id": "r1"})
    assert problem.status_code == 401
    assert problem.headers["x-request-id"] == "r1"


def served_namespace_rules() -> list[dict[str, Any]]:
    role = yaml.safe_load(SERVED_NAMESPACE_ROLE.read_text())
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def test_an_event_that_cannot_be_recorded_does_not_fail_the_restart(
    control_plane: ControlPlane,
    admin: Rest,
    world: World,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service runs as a service account that may not create Events: the restart is
    created all the same, and the failure is logged."""
    ensure_service_account(admin, world.a, "no-events")
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{world.a}"
    admin.ok(
        "POST",
        f"{rbac}/roles",
        {
            "metadata": {"name": "no-events"},
            # what deploy/ grants a served namespace, but Events
            "rules": [
                rule for rule in served_namespace_rules() if "events" not in rule["resources"]
            ],
        },
    )
    admin.ok(
        "POST",
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": "no-events"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "no-events",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "no-events", "namespace": world.a}],
        },
    )
    kubeconfig = token_kubeconfig(
        control_plane, mint(admin, world.a, "no-events"), tmp_path / "kubeconfig"
    )
    caplog.set_level(logging.WARNING, logger="service.operations")
    settings = settings_for(control_plane, world, kubeconfig=kubeconfig, namespaces=[world.a])
    with running_service(settings) as client:
        response = client.post(
            f"/v1/namespaces/{world.a}/restarts", json={"pod": "web-3"}, headers=bearer(world.alice)
        )
        assert response.status_code == 201, response.text
        wait_until(
            "the Event failure to be logged",
            lambda: any("could not record Event" in r.getMessage() for r in caplog.records),
            timeout=10,
        )


def test_a_caller_past_its_rate_gets_429_with_retry_after(
    control_plane: ControlPlane, world: World, audit: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(control_plane, world, rate_limit_per_second=0.05, rate_limit_burst=2)
    url = f"/v1/namespaces/{world.a}/restarts"
    with running_service(settings) as client:
        for _ in range(2):
            response = client.post(
                url, params={"dryRun": "true"}, json={"pod": "web-4"}, headers=bearer(world.alice)
            )
            assert response.status_code == 200, response.text
        refused = client.post(
            url,
            params={"dryRun": "true"},
            json={"pod": "web-4"},
            headers={**bearer(world.alice), "X-Request-Id": "too-fast"},
        )
        assert_problem(refused, 429, "rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        line = one_audit_line(audit, "too-fast")
        assert (line["status"], line["outcome"], line["dryRun"]) == (429, "throttled", True)
        # the limit is per caller: another one still gets through, and reads are not counted
        other = client.post(
            url, params={"dryRun": "true"}, json={"pod": "web-4"}, headers=bearer(world.ops)
        )
        assert other.status_code == 200, other.text
        assert client.get(url, headers=bearer(world.alice)).status_code == 200


def test_a_namespace_at_its_active_cap_gets_429_until_one_finishes(
    control_plane: ControlPlane,
    world: World,
    simulator: Simulator,
    namespace: str,
    make_pod: MakePod,
) -> None:
    make_pod("web-0")
    make_pod("web-1")
    settings = settings_for(
        control_plane, world, namespaces=[namespace], max_active_restarts_per_namespace=1
    )
    url = f"/v1/namespaces/{namespace}/restarts"
    headers = bearer(world.ops)
    simulator.daemon_down = True  # the first restart stays unfinished
    with running_service(settings) as client:
        first = client.post(url, json={"pod": "web-0"}, headers=headers)
        assert first.status_code == 201, first.text
        refused = client.post(url, json={"pod": "web-1"}, headers=headers)
        body = assert_problem(refused, 429, "too-many-active-restarts")
        assert (body["activeRestarts"], body["maxActiveRestarts"]) == (1, 1)
        assert int(refused.headers["retry-after"]) >= 1
        deleted = client.delete(f"{url}/{first.json()['name']}", headers=headers)
        assert deleted.status_code == 200, deleted.text
        simulator.daemon_down = False
        second = client.post(url, json={"pod": "web-1"}, headers=headers)
        assert second.status_code == 201, second.text
