"""The pure rules: checks against a pod, the CRR we build, and how a CRR reads."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from service.core.crr import build_crr
from service.core.errors import (
    ContainerNotStarted,
    DuplicateContainers,
    PodNotFound,
    PodNotRestartable,
    RequestInvalid,
    RestartInProgress,
    UnknownContainers,
)
from service.core.naming import generate_name, idempotent_name, request_hash
from service.core.reading import DELETED_MESSAGE, is_newer, restart_from_crr
from service.core.rules import (
    NO_READINESS_GATE_WARNING,
    check_deadline,
    check_no_active_restart,
    check_pod_restartable,
    classify_rejection,
    readiness_warnings,
    rejection_detail,
    resolve_containers,
)
from service.core.schemas import DNS1123_SUBDOMAIN, RestartRequest


def pod(
    containers: tuple[str, ...] = ("app", "sidecar"),
    *,
    phase: str = "Running",
    node: str | None = "node-1",
    ids: bool = True,
    gates: bool = False,
    deleting: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": c,
                "ports": [{"containerPort": 80}],
                "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
            }
            for c in containers
        ],
        "initContainers": [{"name": "init"}],
    }
    if node:
        spec["nodeName"] = node
    if gates:
        spec["readinessGates"] = [{"conditionType": "KruisePodReady"}]
    metadata: dict[str, Any] = {"name": "web-0", "namespace": "ns", "uid": "uid-1"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    statuses = [
        {"name": c, "containerID": f"containerd://{c}" if ids else "", "restartCount": 0}
        for c in containers
    ]
    return {
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase, "containerStatuses": statuses},
    }


def crr(
    *,
    phase: str = "",
    completed: bool = False,
    message: str = "",
    states: list[dict[str, Any]] | None = None,
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if completed:
        status["completionTime"] = "2026-11-27T10:00:05Z"
    if message:
        status["message"] = message
    if states is not None:
        status["containerRecreateStates"] = states
    return {
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "ContainerRecreateRequest",
        "metadata": {
            "name": "web-0-abcde",
            "namespace": "ns",
            "resourceVersion": "42",
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "labels": {
                "crr.apps.kruise.io/pod-uid": "uid-1",
                "crr.apps.kruise.io/node-name": "node-1",
            },
            "annotations": {
                "crr-gateway.io/requested-by": "alice",
                "crr-gateway.io/reason": "deploy",
                "crr-gateway.io/warnings": json.dumps(["w1"]),
            },
        },
        "spec": {
            "podName": "web-0",
            "containers": [{"name": "app"}, {"name": "sidecar"}],
            "strategy": strategy if strategy is not None else {"failurePolicy": "Fail"},
            "activeDeadlineSeconds": 300,
            "ttlSecondsAfterFinished": 1800,
        },
        "status": status,
    }


def ok(name: str) -> dict[str, Any]:
    return {"name": name, "phase": "Succeeded", "isKilled": True}


# ------------------------------------------------------------------ request model


def test_request_defaults() -> None:
    request = RestartRequest.model_validate({"pod": "web-0"})
    assert request.containers is None
    assert request.failurePolicy == "Fail"
    assert request.orderedRecreate is False
    assert request.unreadyGracePeriodSeconds == 3
    assert request.activeDeadlineSeconds == 300
    assert request.ttlSecondsAfterFinished == 1800
    assert request.terminationGracePeriodSeconds is None
    assert request.minStartedSeconds is None
    assert request.forceRecreate is None


@pytest.mark.parametrize(
    "body",
    [
        {"pod": "web-0", "extra": 1},
        {"pod": "web-0", "activeDeadlineSeconds": 2},
        {"pod": "web-0", "unreadyGracePeriodSeconds": -1},
        {"pod": "web-0", "failurePolicy": "fail"},
        {"pod": "web-0", "reason": "r" * 257},
        {"pod": "web-0", "orderedRecreate": "true"},
        {"pod": "web-0", "activeDeadlineSeconds": "30"},
        {"pod": "Web_0"},
        {"pod": ""},
        {"pod": "web-0", "containers": [""]},
    ],
)
def test_request_rejects(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RestartRequest.model_validate(body)


def test_deadline_maximum_is_configurable() -> None:
    check_deadline(RestartRequest(pod="p", activeDeadlineSeconds=600), 600)
    with pytest.raises(RequestInvalid) as error:
        check_deadline(RestartRequest(pod="p", activeDeadlineSeconds=601), 600)
    assert error.value.extra == {"maxActiveDeadlineSeconds": 600}


# ------------------------------------------------------------------ checks against the pod


def test_every_container_when_none_named() -> None:
    assert resolve_containers(pod(), None) == ["app", "sidecar"]
    assert resolve_containers(pod(), []) == ["app", "sidecar"]
    assert resolve_containers(pod(), ["sidecar"]) == ["sidecar"]


def test_unknown_containers_list_unknown_and_valid_names() -> None:
    with pytest.raises(UnknownContainers) as error:
        resolve_containers(pod(), ["app", "db", "init"])
    assert error.value.status == 422
    assert error.value.extra == {
        "unknownContainers": ["db", "init"],
        "validContainers": ["app", "sidecar"],
    }
    assert "container db not found in Pod" in error.value.detail


def test_duplicates() -> None:
    with pytest.raises(DuplicateContainers) as error:
        resolve_containers(pod(), ["app", "sidecar", "app"])
    assert error.value.detail == "can not recreate app multi times"
    assert error.value.extra == {"duplicateContainers": ["app"]}


def test_containers_without_an_id() -> None:
    with pytest.raises(ContainerNotStarted) as error:
        resolve_containers(pod(ids=False), ["app"])
    assert error.value.status == 409
    assert error.value.detail == (
        "no containerID in app containerStatus, maybe the container has not been initialized"
    )
    no_status = pod()
    no_status["status"]["containerStatuses"] = []
    with pytest.raises(ContainerNotStarted, match="not found app containerStatus in Pod Status"):
        resolve_containers(no_status, ["app"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"phase": "Succeeded"}, "not allowed to recreate containers in an inactive Pod"),
        ({"phase": "Failed"}, "not allowed to recreate containers in an inactive Pod"),
        ({"deleting": True}, "not allowed to recreate containers in an inactive Pod"),
        ({"node": None, "phase": "Pending"}, "not allowed to recreate containers in a pending Pod"),
    ],
)
def test_pods_that_cannot_be_restarted(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PodNotRestartable) as error:
        check_pod_restartable(pod(**kwargs))
    assert error.value.status == 409
    assert error.value.detail == message


def test_a_pod_terminated_by_the_sidecar_terminator_is_allowed() -> None:
    terminated = pod(phase="Succeeded")
    terminated["status"]["conditions"] = [{"type": "SidecarTerminated", "status": "True"}]
    check_pod_restartable(terminated)
    check_pod_restartable(pod(phase="Pending"))


def test_an_active_restart_on_the_pod_blocks_a_new_one() -> None:
    active = restart_from_crr(crr(phase="Recreating"))
    done = restart_from_crr(crr(completed=True, phase="Completed"))
    other_pod_uid = active.model_copy(update={"podUID": "uid-of-an-older-pod"})
    check_no_active_restart(pod(), [done, other_pod_uid])
    with pytest.raises(RestartInProgress) as error:
        check_no_active_restart(pod(), [done, active])
    assert error.value.extra == {"activeRestart": "web-0-abcde"}
    assert "web-0-abcde" in error.value.detail


def test_readiness_gate_warning() -> None:
    assert readiness_warnings(pod()) == [NO_READINESS_GATE_WARNING]
    assert readiness_warnings(pod(gates=True)) == []


# ------------------------------------------------------------------ names


def test_generated_names_are_valid_and_short_enough() -> None:
    name = generate_name("web-0")
    assert re.fullmatch(r"web-0-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    long = generate_name("a" * 250 + ".b")
    assert len(long) <= 253
    assert re.match(DNS1123_SUBDOMAIN, long)
    trimmed = generate_name("x" * 246 + "-.y", suffix="abcde")
    assert trimmed == "x" * 246 + "-abcde"


def test_idempotent_names_depend_on_namespace_and_key() -> None:
    assert idempotent_name("ns", "k") == idempotent_name("ns", "k")
    assert idempotent_name("ns", "k") != idempotent_name("ns", "k2")
    assert idempotent_name("ns", "k") != idempotent_name("other", "k")
    assert re.match(DNS1123_SUBDOMAIN, idempotent_name("ns", "k"))


def test_request_hash_ignores_spelled_out_defaults() -> None:
    plain = RestartRequest(pod="web-0")
    spelled = RestartRequest(pod="web-0", failurePolicy="Fail", containers=[])
    assert request_hash(plain) == request_hash(spelled)
    assert request_hash(plain) != request_hash(RestartRequest(pod="web-0", reason="x"))


# ------------------------------------------------------------------ the CRR we create


def test_the_crr_carries_names_only_and_the_defaults() -> None:
    body = build_crr(
        namespace="ns",
        name="web-0-abcde",
        version="v1beta1",
        request=RestartRequest(pod="web-0", reason="deploy"),
        containers=["app", "sidecar"],
        requested_by="anonymous",
        warnings=["w"],
        body_hash="h",
        idempotency=None,
    )
    assert body["apiVersion"] == "apps.kruise.io/v1beta1"
    assert body["kind"] == "ContainerRecreateRequest"
    assert body["spec"] == {
        "podName": "web-0",
        "containers": [{"name": "app"}, {"name": "sidecar"}],
        "strategy": {
            "failurePolicy": "Fail",
            "orderedRecreate": False,
            "unreadyGracePeriodSeconds": 3,
        },
        "activeDeadlineSeconds": 300,
        "ttlSecondsAfterFinished": 1800,
    }
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "crr-gateway"}
    assert body["metadata"]["annotations"] == {
        "crr-gateway.io/requested-by": "anonymous",
        "crr-gateway.io/request-hash": "h",
        "crr-gateway.io/reason": "deploy",
        "crr-gateway.io/warnings": '["w"]',
    }


def test_optional_strategy_fields_only_when_given() -> None:
    request = RestartRequest(
        pod="web-0", terminationGracePeriodSeconds=0, minStartedSeconds=5, forceRecreate=False
    )
    body = build_crr(
        namespace="ns",
        name="n",
        version="v1alpha1",
        request=request,
        containers=["app"],
        requested_by="a",
        warnings=[],
        body_hash="h",
        idempotency="key",
    )
    strategy = body["spec"]["strategy"]
    assert strategy["terminationGracePeriodSeconds"] == 0
    assert strategy["minStartedSeconds"] == 5
    assert strategy["forceRecreate"] is False
    assert body["metadata"]["labels"]["crr-gateway.io/idempotency-key"] == "key"
    assert "crr-gateway.io/warnings" not in body["metadata"]["annotations"]


# ------------------------------------------------------------------ reading a CRR


def test_a_new_crr_is_pending() -> None:
    restart = restart_from_crr(crr())
    assert restart.phase == "Pending"
    assert restart.finished is False
    assert restart.result is None
    assert restart.requestedBy == "alice"
    assert restart.reason == "deploy"
    assert restart.warnings == ["w1"]
    assert restart.podUID == "uid-1"
    assert restart.node == "node-1"
    assert restart.apiVersion == "v1alpha1"
    assert restart.resourceVersion == "42"
    assert restart.strategy.unreadyGracePeriodSeconds is None
    assert restart.strategy.minStartedSeconds == 0


def test_succeeded_only_when_every_container_succeeded_and_no_message() -> None:
    restart = restart_from_crr(
        crr(phase="Completed", completed=True, states=[ok("app"), ok("sidecar")])
    )
    assert (restart.finished, restart.result, restart.message) == (True, "Succeeded", None)
    assert restart.completedAt is not None

    partial = restart_from_crr(crr(phase="Completed", completed=True, states=[ok("app")]))
    assert partial.result == "Failed"
    assert partial.message == "containers not recreated: sidecar"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("recreating has exceeded the activeDeadlineSeconds", "DeadlineExceeded"),
        ("pod has gone", "PodGone"),
        ("daemon has not responded for a long time", "DaemonNotResponding"),
        ("something new", "Unknown"),
    ],
)
def test_kruise_completion_messages(message: str, reason: str) -> None:
    restart = restart_from_crr(
        crr(phase="Completed", completed=True, message=message, states=[ok("app"), ok("sidecar")])
    )
    assert restart.result == "Failed"
    assert restart.failureReason == reason
    assert restart.message == message


def test_a_kill_error() -> None:
    states = [
        {"name": "app", "phase": "Failed", "message": "kill container error: boom"},
        {"name": "sidecar", "phase": "Pending"},
    ]
    restart = restart_from_crr(crr(phase="Completed", completed=True, states=states))
    assert restart.result == "Failed"
    assert restart.failureReason == "KillError"
    assert restart.message == "app: kill container error: boom"
    assert restart.containerStates[0].isKilled is False


def test_a_deleted_unfinished_restart_is_failed() -> None:
    restart = restart_from_crr(crr(phase="Recreating"), deleted=True)
    assert restart.finished is True
    assert restart.phase == "Recreating"
    assert restart.result == "Failed"
    assert restart.failureReason == "Deleted"
    assert restart.message == DELETED_MESSAGE
    finished = restart_from_crr(
        crr(phase="Completed", completed=True, states=[ok("app"), ok("sidecar")]), deleted=True
    )
    assert finished.result == "Succeeded"


def test_malformed_objects_do_not_crash() -> None:
    restart = restart_from_crr(
        {"metadata": {"name": "x", "annotations": {"crr-gateway.io/warnings": "{"}}}
    )
    assert restart.name == "x"
    assert restart.warnings == ["{"]
    assert restart.containers == []


def test_webhook_denials_map_to_our_answers() -> None:
    prefix = 'admission webhook "mcontainerrecreaterequest.kb.io" denied the request: '
    assert classify_rejection(prefix + "no found Pod named web-0") is PodNotFound
    assert (
        classify_rejection(prefix + "not allowed to recreate containers in an inactive Pod")
        is PodNotRestartable
    )
    assert (
        classify_rejection(prefix + "no containerID in app containerStatus") is ContainerNotStarted
    )
    assert (
        classify_rejection(prefix + "not found app containerStatus in Pod Status")
        is ContainerNotStarted
    )
    assert classify_rejection(prefix + "something else") is None
    assert rejection_detail(prefix + "no found Pod named web-0") == "no found Pod named web-0"


def test_resource_versions() -> None:
    assert is_newer("10", "9")
    assert not is_newer("9", "10")
    assert not is_newer("10", "10")
    assert is_newer("1", "")
    assert is_newer("abc", "abd")
