"""The rules a create must pass, against a pod; and kruise's webhook denials read as our own
answers."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.errors import (
    ContainerNotStarted,
    DuplicateContainers,
    PodNotFound,
    PodNotRestartable,
    RequestInvalid,
    RestartInProgress,
    UnknownContainers,
)
from service.core.reading import restart_from_crr
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
from service.core.schemas import RestartRequest
from tests.support.crrs import crr
from tests.support.pods import pod


def test_deadline_maximum_is_configurable() -> None:
    check_deadline(RestartRequest(pod="p", activeDeadlineSeconds=600), 600)
    with pytest.raises(RequestInvalid) as error:
        check_deadline(RestartRequest(pod="p", activeDeadlineSeconds=601), 600)
    assert error.value.extra == {"maxActiveDeadlineSeconds": 600}


def test_every_container_when_none_named() -> None:
    assert resolve_containers(pod(), None) == ["app", "sidecar"]
    assert resolve_containers(pod(), ["sidecar"]) == ["sidecar"]


def test_an_empty_list_of_containers_is_not_every_container() -> None:
    with pytest.raises(RequestInvalid) as error:
        resolve_containers(pod(), [])
    assert error.value.status == 422
    assert error.value.detail == "containers is empty: omit containers to restart all of them"


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
