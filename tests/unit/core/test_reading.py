"""How a CRR reads as a restart: phases, results, failure reasons, deletions, resource versions."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.reading import DELETED_MESSAGE, is_newer, restart_from_crr
from tests.support.crrs import crr


def ok(name: str) -> dict[str, Any]:
    return {"name": name, "phase": "Succeeded", "isKilled": True}


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


def test_resource_versions() -> None:
    assert is_newer("10", "9")
    assert not is_newer("9", "10")
    assert not is_newer("10", "10")
    assert is_newer("1", "")
    assert is_newer("abc", "abd")
