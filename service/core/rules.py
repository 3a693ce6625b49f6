"""The rules a create must pass, over a pod's record (``service.core.pods.Pod``): what kruise's
webhook would refuse, checked before we ask it, and how to read its refusals when the pod
changed in between.

The checks mirror kruise v1.9.0's CRR mutating webhook
(``pkg/webhook/containerrecreaterequest/mutating/crr_mutating_handler.go``) and keep its
messages, so a caller sees the same words whether we or the webhook refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from service.core.crr import KRUISE_POD_READY
from service.core.errors import (
    ContainerNotStarted,
    DuplicateContainers,
    GatewayError,
    PodNotFound,
    PodNotRestartable,
    RequestInvalid,
    RestartInProgress,
    RestartPolicyNever,
    UnknownContainers,
)
from service.core.pods import Pod
from service.core.schemas import Restart, RestartStrategyFields

# kruise's words for a pod without a node (its webhook's, which ours repeat)
PENDING_POD = "not allowed to recreate containers in a pending Pod"
NO_READINESS_GATE_WARNING = (
    f"pod has no {KRUISE_POD_READY} readiness gate: unreadyGracePeriodSeconds will not take "
    "it out of Service endpoints before its containers are killed"
)
RESTART_POLICY_NEVER = (
    "pod has restartPolicy Never: a killed container would not be started again (kruise "
    "accepts the restart, which then waits for the container until its activeDeadlineSeconds)"
)
RESTART_POLICY_ON_FAILURE_WARNING = (
    "pod has restartPolicy OnFailure: a container that exits 0 on SIGTERM is not started "
    "again, and the restart then fails when its activeDeadlineSeconds run out"
)
DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30  # the Kubernetes default, and kruise's


def check_deadline(request: RestartStrategyFields, max_active_deadline_seconds: int) -> None:
    if request.activeDeadlineSeconds > max_active_deadline_seconds:
        raise RequestInvalid(
            f"activeDeadlineSeconds can not be more than {max_active_deadline_seconds}s "
            "(the configured maximum)",
            extra={"maxActiveDeadlineSeconds": max_active_deadline_seconds},
        )


def check_pod_restartable(pod: Pod) -> None:
    """Refuse a pod that is not active or not on a node (kruise's webhook answers 400;
    it is a state conflict, so 409 here), and, our own rule, a pod whose restart policy would
    leave a killed container stopped (kruise's webhook lets that through)."""
    active = pod.phase not in ("Succeeded", "Failed") and not pod.deleting
    if not active and not pod.conditions.sidecar_terminated:
        raise PodNotRestartable("not allowed to recreate containers in an inactive Pod")
    if not pod.spec.node_name:
        raise PodNotRestartable(PENDING_POD)
    if pod.spec.restart_policy == "Never":
        raise RestartPolicyNever(RESTART_POLICY_NEVER)


def resolve_containers(pod: Pod, requested: Sequence[str] | None) -> list[str]:
    """The containers to recreate: the requested ones, checked, or every container in
    ``spec.containers``. Every one must have a ``containerID`` already."""
    valid = pod.container_names
    if requested is not None and not requested:  # the request model refuses it first
        raise RequestInvalid("containers is empty: omit containers to restart all of them")
    names = list(requested) if requested is not None else valid
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise DuplicateContainers(
            "; ".join(f"can not recreate {d} multi times" for d in duplicates),
            duplicates=duplicates,
        )
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise UnknownContainers(
            "; ".join(f"container {u} not found in Pod" for u in unknown)
            + f" (containers: {', '.join(valid)})",
            unknown=unknown,
            valid=valid,
        )
    for name in names:
        container_id = pod.container_id(name)
        if container_id is None:
            raise ContainerNotStarted(f"not found {name} containerStatus in Pod Status")
        if not container_id:
            raise ContainerNotStarted(
                f"no containerID in {name} containerStatus, "
                "maybe the container has not been initialized"
            )
    return names


def check_no_active_restart(pod: Pod, restarts: Iterable[Restart]) -> None:
    """kruise recreates one CRR per pod at a time; a second one queues and can hang."""
    uid = pod.uid
    for restart in restarts:
        if restart.finished or (restart.podUID and uid and restart.podUID != uid):
            continue
        raise RestartInProgress(
            f"restart {restart.name} is still active on pod {restart.pod} "
            f"(phase {restart.phase}); wait for it to finish or delete it",
            extra={"activeRestart": restart.name},
        )


def readiness_warnings(pod: Pod) -> list[str]:
    if KRUISE_POD_READY in pod.spec.readiness_gates:
        return []
    return [NO_READINESS_GATE_WARNING]


def restart_policy_warnings(pod: Pod) -> list[str]:
    if pod.spec.restart_policy == "OnFailure":
        return [RESTART_POLICY_ON_FAILURE_WARNING]
    return []


def deadline_warnings(
    pod: Pod, request: RestartStrategyFields, containers: Sequence[str]
) -> list[str]:
    """A deadline that a real node may need longer than: kruise kills the containers one after
    another, each within its grace period (preStop hook included), and counts a new one done
    only once it is Ready, which its startup and readiness probes' initial delays hold back.
    Stopping may take the whole grace period; a restart not finished by its deadline fails."""
    grace = request.terminationGracePeriodSeconds
    if grace is None:
        grace = pod.spec.termination_grace_period
    if grace is None:
        grace = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    wanted = set(containers)
    starts = [
        max(c.startup_delay, c.readiness_delay) for c in pod.spec.containers if c.name in wanted
    ] or [0]
    stopping = grace * len(containers)
    starting = (sum(starts) if request.orderedRecreate else max(starts)) + (
        request.minStartedSeconds or 0
    )
    needed = request.unreadyGracePeriodSeconds + stopping + starting
    if request.activeDeadlineSeconds >= needed:
        return []
    return [
        f"activeDeadlineSeconds {request.activeDeadlineSeconds} may be too short for this pod: "
        f"stopping {len(containers)} container(s) may take up to {stopping}s "
        f"(terminationGracePeriodSeconds {grace}, one after another), after "
        f"unreadyGracePeriodSeconds {request.unreadyGracePeriodSeconds}, and their probes hold "
        f"them unready for at least {starting}s; a restart not done in time fails with "
        "DeadlineExceeded"
    ]


def create_warnings(
    pod: Pod, request: RestartStrategyFields, containers: Sequence[str]
) -> list[str]:
    """Every warning a restart of ``containers`` of ``pod`` is created with."""
    return [
        *readiness_warnings(pod),
        *restart_policy_warnings(pod),
        *deadline_warnings(pod, request, containers),
    ]


_DENIED = "denied the request: "


def classify_rejection(message: str) -> type[GatewayError] | None:
    """What kind of our errors a webhook denial is, when the pod changed between our checks
    and the webhook's (a race): the same answer as if we had seen it ourselves."""
    text = message.split(_DENIED, 1)[1] if _DENIED in message else message
    if text.startswith("no found Pod named"):
        return PodNotFound
    if text.startswith("not allowed to recreate containers in"):
        return PodNotRestartable
    if text.startswith("no containerID in") or (
        text.startswith("not found ") and "containerStatus" in text
    ):
        return ContainerNotStarted
    return None


def rejection_detail(message: str) -> str:
    return message.split(_DENIED, 1)[1] if _DENIED in message else message
