"""Pure rules over plain dicts: what kruise's webhook would refuse, the CRR we create, and how
a CRR reads as a restart. No I/O here.

The checks mirror kruise v1.9.0's CRR mutating webhook
(``pkg/webhook/containerrecreaterequest/mutating/crr_mutating_handler.go``) and keep its
messages, so a caller sees the same words whether we or the webhook refused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from service.errors import (
    ContainerNotStarted,
    DuplicateContainers,
    GatewayError,
    PodNotFound,
    PodNotRestartable,
    RequestInvalid,
    RestartInProgress,
    UnknownContainers,
)
from service.protocol import CRR_GROUP, CRR_KIND, KubeObject
from service.schemas import (
    DEFAULT_FAILURE_POLICY,
    ContainerState,
    FailureReason,
    Phase,
    Restart,
    RestartRequest,
    Result,
    Strategy,
)

# --- kruise's keys
CRR_ACTIVE_LABEL = "crr.apps.kruise.io/active"
CRR_POD_UID_LABEL = "crr.apps.kruise.io/pod-uid"
CRR_NODE_NAME_LABEL = "crr.apps.kruise.io/node-name"
KRUISE_POD_READY = "KruisePodReady"
SIDECAR_TERMINATED = "SidecarTerminated"

# --- ours
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "crr-gateway"
IDEMPOTENCY_KEY_LABEL = "crr-gateway.io/idempotency-key"
REQUEST_HASH_ANNOTATION = "crr-gateway.io/request-hash"
REQUESTED_BY_ANNOTATION = "crr-gateway.io/requested-by"
REASON_ANNOTATION = "crr-gateway.io/reason"
REQUEST_ID_ANNOTATION = "crr-gateway.io/request-id"
WARNINGS_ANNOTATION = "crr-gateway.io/warnings"

MAX_NAME = 253
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet
_SUFFIX_LEN = 5

NO_READINESS_GATE_WARNING = (
    f"pod has no {KRUISE_POD_READY} readiness gate: unreadyGracePeriodSeconds will not take "
    "it out of Service endpoints before its containers are killed"
)
DELETED_MESSAGE = "the ContainerRecreateRequest was deleted before it finished"

# kruise's completion messages (pkg/controller/containerrecreaterequest/crr_controller.go)
_KNOWN_MESSAGES: dict[str, FailureReason] = {
    "recreating has exceeded the activeDeadlineSeconds": "DeadlineExceeded",
    "pod has gone": "PodGone",
    "daemon has not responded for a long time": "DaemonNotResponding",
}


# ------------------------------------------------------------------ request checks


def check_deadline(request: RestartRequest, max_active_deadline_seconds: int) -> None:
    if request.activeDeadlineSeconds > max_active_deadline_seconds:
        raise RequestInvalid(
            f"activeDeadlineSeconds can not be more than {max_active_deadline_seconds}s "
            "(the configured maximum)",
            extra={"maxActiveDeadlineSeconds": max_active_deadline_seconds},
        )


def _meta(obj: KubeObject) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _section(obj: KubeObject, key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _list(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = obj.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def pod_container_names(pod: KubeObject) -> list[str]:
    return [str(c.get("name")) for c in _list(_section(pod, "spec"), "containers")]


def check_pod_restartable(pod: KubeObject) -> None:
    """Refuse a pod that is not active or not on a node (kruise's webhook answers 400;
    it is a state conflict, so 409 here)."""
    status = _section(pod, "status")
    active = status.get("phase") not in ("Succeeded", "Failed") and not _meta(pod).get(
        "deletionTimestamp"
    )
    sidecar_terminated = any(
        c.get("type") == SIDECAR_TERMINATED for c in _list(status, "conditions")
    )
    if not active and not sidecar_terminated:
        raise PodNotRestartable("not allowed to recreate containers in an inactive Pod")
    if not _section(pod, "spec").get("nodeName"):
        raise PodNotRestartable("not allowed to recreate containers in a pending Pod")


def resolve_containers(pod: KubeObject, requested: Sequence[str] | None) -> list[str]:
    """The containers to recreate: the requested ones, checked, or every container in
    ``spec.containers``. Every one must have a ``containerID`` already."""
    valid = pod_container_names(pod)
    names = list(requested) if requested else valid
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
    statuses = {str(s.get("name")): s for s in _list(_section(pod, "status"), "containerStatuses")}
    for name in names:
        status = statuses.get(name)
        if status is None:
            raise ContainerNotStarted(f"not found {name} containerStatus in Pod Status")
        if not status.get("containerID"):
            raise ContainerNotStarted(
                f"no containerID in {name} containerStatus, "
                "maybe the container has not been initialized"
            )
    return names


def check_no_active_restart(pod: KubeObject, restarts: Iterable[Restart]) -> None:
    """kruise recreates one CRR per pod at a time; a second one queues and can hang."""
    uid = _meta(pod).get("uid")
    for restart in restarts:
        if restart.finished or (restart.podUID and uid and restart.podUID != uid):
            continue
        raise RestartInProgress(
            f"restart {restart.name} is still active on pod {restart.pod} "
            f"(phase {restart.phase}); wait for it to finish or delete it",
            extra={"activeRestart": restart.name},
        )


def readiness_warnings(pod: KubeObject) -> list[str]:
    gates = _list(_section(pod, "spec"), "readinessGates")
    if any(g.get("conditionType") == KRUISE_POD_READY for g in gates):
        return []
    return [NO_READINESS_GATE_WARNING]


# ------------------------------------------------------------------ names and hashes


KEYED_NAME_PREFIX = "restart"


def generate_name(pod: str, *, suffix: str | None = None) -> str:
    """``<pod>-<5 random>``, trimmed to a valid DNS-1123 subdomain of at most 253 chars."""
    if suffix is None:
        suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LEN))
    prefix = pod[: MAX_NAME - len(suffix) - 1].rstrip("-.")
    return f"{prefix}-{suffix}" if prefix else suffix


def idempotency_label(namespace: str, key: str) -> str:
    """A label value (<= 63 chars) identifying an Idempotency-Key within a namespace."""
    return hashlib.sha256(f"{namespace}\0{key}".encode()).hexdigest()[:40]


def idempotent_name(namespace: str, key: str) -> str:
    """The deterministic name of a keyed restart whose caller gave no name. It depends on the
    key alone (not on the pod), so any two requests with one key, whatever their bodies, on any
    replicas, collide in the apiserver: one creates, the other is answered from it (200, or 422
    for another body)."""
    return generate_name(KEYED_NAME_PREFIX, suffix="k" + idempotency_label(namespace, key)[:16])


def request_hash(request: RestartRequest) -> str:
    """Hash of the request with defaults applied: two bodies meaning the same hash alike."""
    normalized = request.model_dump(mode="json")
    normalized["containers"] = normalized.get("containers") or None
    encoded = json.dumps(normalized, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


# ------------------------------------------------------------------ building the CRR


def build_crr(
    *,
    namespace: str,
    name: str,
    version: str,
    request: RestartRequest,
    containers: Sequence[str],
    requested_by: str,
    warnings: Sequence[str],
    body_hash: str,
    idempotency: str | None,
    request_id: str | None = None,
) -> KubeObject:
    """The CRR body. Containers carry names only: kruise's webhook fills ``statusContext``,
    ``preStop`` and ``ports`` itself and refuses them from a client."""
    strategy: dict[str, Any] = {
        "failurePolicy": request.failurePolicy,
        "orderedRecreate": request.orderedRecreate,
        "unreadyGracePeriodSeconds": request.unreadyGracePeriodSeconds,
    }
    if request.terminationGracePeriodSeconds is not None:
        strategy["terminationGracePeriodSeconds"] = request.terminationGracePeriodSeconds
    if request.minStartedSeconds is not None:
        strategy["minStartedSeconds"] = request.minStartedSeconds
    if request.forceRecreate is not None:
        strategy["forceRecreate"] = request.forceRecreate
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    if idempotency is not None:
        labels[IDEMPOTENCY_KEY_LABEL] = idempotency
    annotations = {REQUESTED_BY_ANNOTATION: requested_by, REQUEST_HASH_ANNOTATION: body_hash}
    if request.reason is not None:
        annotations[REASON_ANNOTATION] = request.reason
    if request_id is not None:
        annotations[REQUEST_ID_ANNOTATION] = request_id
    if warnings:
        annotations[WARNINGS_ANNOTATION] = json.dumps(list(warnings))
    return {
        "apiVersion": f"{CRR_GROUP}/{version}",
        "kind": CRR_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "podName": request.pod,
            "containers": [{"name": c} for c in containers],
            "strategy": strategy,
            "activeDeadlineSeconds": request.activeDeadlineSeconds,
            "ttlSecondsAfterFinished": request.ttlSecondsAfterFinished,
        },
    }


# ------------------------------------------------------------------ reading a CRR


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _warnings(annotations: dict[str, Any]) -> list[str]:
    raw = annotations.get(WARNINGS_ANNOTATION)
    if not isinstance(raw, str):
        return []
    try:
        decoded = json.loads(raw)
    except ValueError:
        return [raw]
    return [str(w) for w in decoded] if isinstance(decoded, list) else [str(decoded)]


def outcome(
    *,
    finished: bool,
    deleted: bool,
    message: str,
    containers: Sequence[str],
    states: Sequence[ContainerState],
) -> tuple[Result | None, FailureReason | None, str | None]:
    """(result, failureReason, message). Succeeded only when every container's state is
    Succeeded and kruise left no message; otherwise Failed with the reason."""
    if not finished:
        return None, None, message or None
    by_name = {s.name: s for s in states}
    all_succeeded = bool(containers) and all(
        (s := by_name.get(c)) is not None and s.phase == "Succeeded" for c in containers
    )
    if all_succeeded and not message and not deleted:
        return "Succeeded", None, None
    if message:
        return "Failed", _KNOWN_MESSAGES.get(message, "Unknown"), message
    failed = [s for s in states if s.phase == "Failed"]
    if failed:
        text = "; ".join(f"{s.name}: {s.message or 'failed'}" for s in failed)
        killing = any((s.message or "").startswith("kill container error") for s in failed)
        return "Failed", "KillError" if killing else "ContainerFailed", text
    if deleted:
        return "Failed", "Deleted", DELETED_MESSAGE
    missing = [c for c in containers if (s := by_name.get(c)) is None or s.phase != "Succeeded"]
    return "Failed", "Unknown", "containers not recreated: " + ", ".join(missing)


def restart_from_crr(obj: KubeObject, *, deleted: bool = False) -> Restart:
    """Read a CRR (v1alpha1 or v1beta1: the fields we use are the same) as a restart.
    ``deleted``: the CRR is gone; an unfinished one then counts as finished and failed."""
    meta = _meta(obj)
    spec = _section(obj, "spec")
    status = _section(obj, "status")
    strategy = _section(spec, "strategy")
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    assert isinstance(labels, dict) and isinstance(annotations, dict)

    containers = [str(c.get("name")) for c in _list(spec, "containers")]
    states = [
        ContainerState(
            name=str(s.get("name", "")),
            phase=str(s.get("phase", "")),
            isKilled=bool(s.get("isKilled", False)),
            message=str(s["message"]) if s.get("message") else None,
        )
        for s in _list(status, "containerRecreateStates")
    ]
    raw_phase = status.get("phase")
    completed_at = _time(status.get("completionTime"))
    finished_by_kruise = completed_at is not None or raw_phase == "Completed"
    finished = finished_by_kruise or deleted
    phase: Phase = (
        "Completed"
        if finished_by_kruise
        else ("Recreating" if raw_phase == "Recreating" else "Pending")
    )
    message = str(status.get("message") or "")
    result, failure_reason, text = outcome(
        finished=finished,
        deleted=deleted and not finished_by_kruise,
        message=message,
        containers=containers,
        states=states,
    )
    api_version = str(obj.get("apiVersion") or "")
    return Restart(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        pod=str(spec.get("podName", "")),
        podUID=labels.get(CRR_POD_UID_LABEL),
        node=labels.get(CRR_NODE_NAME_LABEL),
        containers=containers,
        strategy=Strategy(
            failurePolicy=str(strategy.get("failurePolicy") or DEFAULT_FAILURE_POLICY),
            orderedRecreate=bool(strategy.get("orderedRecreate", False)),
            forceRecreate=bool(strategy.get("forceRecreate", False)),
            unreadyGracePeriodSeconds=_int(strategy.get("unreadyGracePeriodSeconds")),
            terminationGracePeriodSeconds=_int(strategy.get("terminationGracePeriodSeconds")),
            minStartedSeconds=_int(strategy.get("minStartedSeconds")) or 0,
        ),
        activeDeadlineSeconds=_int(spec.get("activeDeadlineSeconds")),
        ttlSecondsAfterFinished=_int(spec.get("ttlSecondsAfterFinished")),
        phase=phase,
        finished=finished,
        result=result,
        failureReason=failure_reason,
        message=text,
        containerStates=states,
        createdAt=_time(meta.get("creationTimestamp")),
        completedAt=completed_at,
        requestedBy=annotations.get(REQUESTED_BY_ANNOTATION),
        reason=annotations.get(REASON_ANNOTATION),
        warnings=_warnings(annotations),
        resourceVersion=str(meta.get("resourceVersion") or ""),
        apiVersion=api_version.rsplit("/", 1)[-1] if api_version else "",
    )


def crr_request_hash(obj: KubeObject) -> str | None:
    annotations = _meta(obj).get("annotations")
    if isinstance(annotations, dict):
        value = annotations.get(REQUEST_HASH_ANNOTATION)
        return value if isinstance(value, str) else None
    return None


def crr_idempotency_label(obj: KubeObject) -> str | None:
    labels = _meta(obj).get("labels")
    if isinstance(labels, dict):
        value = labels.get(IDEMPOTENCY_KEY_LABEL)
        return value if isinstance(value, str) else None
    return None


def is_newer(candidate: str, current: str) -> bool:
    """Whether resourceVersion ``candidate`` is newer than ``current``. Opaque in theory;
    etcd's integers in practice. Unparseable versions count as newer (take the news)."""
    if not current:
        return True
    try:
        return int(candidate) > int(current)
    except ValueError:
        return candidate != current


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
