"""The rules a create must pass, against a pod's record (built from the apiserver's object as
the service builds it); and kruise's webhook denials read as our own
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
    RestartPolicyNever,
    UnknownContainers,
)
from service.core.pods import Pod
from service.core.reading import restart_from_crr
from service.core.rules import (
    NO_READINESS_GATE_WARNING,
    RESTART_POLICY_ON_FAILURE_WARNING,
    check_deadline,
    check_no_active_restart,
    check_pod_restartable,
    classify_rejection,
    create_warnings,
    deadline_warnings,
    readiness_warnings,
    rejection_detail,
    resolve_containers,
    restart_policy_warnings,
)
from service.core.schemas import RestartRequest
from tests.support.crrs import crr
from tests.support.pods import pod as pod_object


def pod(**options: Any) -> Pod:
    return Pod.from_object(pod_object(**options))


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
    no_status = pod_object()
    no_status["status"]["containerStatuses"] = []
    with pytest.raises(ContainerNotStarted, match="not found app containerStatus in Pod Status"):
        resolve_containers(Pod.from_object(no_status), ["app"])


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


def test_a_pod_that_never_restarts_its_containers_is_refused() -> None:
    with pytest.raises(RestartPolicyNever) as error:
        check_pod_restartable(pod(restart_policy="Never"))
    assert error.value.status == 409
    assert isinstance(error.value, PodNotRestartable)  # rollouts leave such pods out
    assert "restartPolicy Never" in error.value.detail
    assert "would not be started again" in error.value.detail
    for policy in ("Always", "OnFailure"):
        check_pod_restartable(pod(restart_policy=policy))
    # an inactive pod says so first, whatever its policy
    with pytest.raises(PodNotRestartable, match="inactive"):
        check_pod_restartable(pod(phase="Failed", restart_policy="Never"))


def test_on_failure_warns_that_a_clean_exit_is_not_started_again() -> None:
    assert restart_policy_warnings(pod(restart_policy="OnFailure")) == [
        RESTART_POLICY_ON_FAILURE_WARNING
    ]
    assert "exits 0 on SIGTERM is not started again" in RESTART_POLICY_ON_FAILURE_WARNING
    assert restart_policy_warnings(pod(restart_policy="Always")) == []
    assert create_warnings(
        pod(restart_policy="OnFailure"), RestartRequest(pod="web-0"), ["app"]
    ) == [
        NO_READINESS_GATE_WARNING,
        RESTART_POLICY_ON_FAILURE_WARNING,
    ]


def _probed(grace: int, delays: dict[str, int]) -> Pod:
    slow = pod_object(gates=True)
    slow["spec"]["terminationGracePeriodSeconds"] = grace
    for container in slow["spec"]["containers"]:
        delay = delays.get(container["name"], 0)
        container["readinessProbe"] = {"initialDelaySeconds": delay, "periodSeconds": 5}
    return Pod.from_object(slow)


def test_the_default_deadline_fits_a_pod_with_real_grace_periods_and_probes() -> None:
    # 30 s grace per container (the Kubernetes default) and a readiness probe after 20 s
    assert deadline_warnings(_probed(30, {"app": 20}), RestartRequest(pod="web-0"), ["app"]) == []
    both = ["app", "sidecar"]
    assert deadline_warnings(_probed(30, {"app": 20}), RestartRequest(pod="web-0"), both) == []


def test_a_deadline_shorter_than_stopping_and_starting_may_take_is_warned() -> None:
    request = RestartRequest(pod="web-0", activeDeadlineSeconds=60)
    # 3 s unready + 2 x 30 s to stop + 10 s until ready: 73 s > 60 s
    (warning,) = deadline_warnings(_probed(30, {"app": 10}), request, ["app", "sidecar"])
    assert warning.startswith("activeDeadlineSeconds 60 may be too short for this pod")
    assert "up to 60s (terminationGracePeriodSeconds 30" in warning
    assert "at least 10s" in warning and "DeadlineExceeded" in warning
    # one container, or a shorter grace period given with the request, fits
    assert deadline_warnings(_probed(30, {"app": 10}), request, ["app"]) == []
    shorter = RestartRequest(pod="web-0", activeDeadlineSeconds=60, terminationGracePeriodSeconds=5)
    assert deadline_warnings(_probed(30, {"app": 10}), shorter, ["app", "sidecar"]) == []
    # a database's long grace period outlasts the default deadline
    (warning,) = deadline_warnings(_probed(600, {}), RestartRequest(pod="web-0"), ["app"])
    assert "activeDeadlineSeconds 300" in warning and "up to 600s" in warning


def test_ordered_restarts_wait_for_each_container_to_be_ready() -> None:
    probed = _probed(10, {"app": 40, "sidecar": 40})
    unordered = RestartRequest(pod="web-0", activeDeadlineSeconds=70)
    assert deadline_warnings(probed, unordered, ["app", "sidecar"]) == []  # 3 + 20 + 40
    ordered = unordered.model_copy(update={"orderedRecreate": True})
    (warning,) = deadline_warnings(probed, ordered, ["app", "sidecar"])  # 3 + 20 + 80
    assert "at least 80s" in warning


def test_a_pod_without_a_grace_period_counts_the_kubernetes_default() -> None:
    bare = pod_object()
    del bare["spec"]["terminationGracePeriodSeconds"]
    request = RestartRequest(pod="web-0", activeDeadlineSeconds=30)
    (warning,) = deadline_warnings(Pod.from_object(bare), request, ["app"])
    assert "terminationGracePeriodSeconds 30" in warning


def test_a_pod_terminated_by_the_sidecar_terminator_is_allowed() -> None:
    terminated = pod_object(phase="Succeeded")
    terminated["status"]["conditions"] = [{"type": "SidecarTerminated", "status": "True"}]
    check_pod_restartable(Pod.from_object(terminated))
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
