"""A ContainerRecreateRequest read back as a restart (v1alpha1 or v1beta1: the fields we use
are the same), and what the cache needs from a raw CRR."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.core.crr import (
    CRR_NODE_NAME_LABEL,
    CRR_POD_UID_LABEL,
    IDEMPOTENCY_KEY_LABEL,
    REASON_ANNOTATION,
    REQUEST_HASH_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    WARNINGS_ANNOTATION,
)
from service.core.objects import KubeObject, dict_items, metadata, section
from service.core.schemas import (
    DEFAULT_FAILURE_POLICY,
    ContainerState,
    FailureReason,
    Phase,
    Restart,
    Result,
    Strategy,
)

DELETED_MESSAGE = "the ContainerRecreateRequest was deleted before it finished"

# kruise's completion messages (pkg/controller/containerrecreaterequest/crr_controller.go)
_KNOWN_MESSAGES: dict[str, FailureReason] = {
    "recreating has exceeded the activeDeadlineSeconds": "DeadlineExceeded",
    "pod has gone": "PodGone",
    "daemon has not responded for a long time": "DaemonNotResponding",
}


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


def result_of(
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
    """Read a CRR as a restart. ``deleted``: the CRR is gone; an unfinished one then counts
    as finished and failed."""
    meta = metadata(obj)
    spec = section(obj, "spec")
    status = section(obj, "status")
    strategy = section(spec, "strategy")
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    assert isinstance(labels, dict) and isinstance(annotations, dict)

    containers = [str(c.get("name")) for c in dict_items(spec, "containers")]
    states = [
        ContainerState(
            name=str(s.get("name", "")),
            phase=str(s.get("phase", "")),
            isKilled=bool(s.get("isKilled", False)),
            message=str(s["message"]) if s.get("message") else None,
        )
        for s in dict_items(status, "containerRecreateStates")
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
    result, failure_reason, text = result_of(
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
    annotations = metadata(obj).get("annotations")
    if isinstance(annotations, dict):
        value = annotations.get(REQUEST_HASH_ANNOTATION)
        return value if isinstance(value, str) else None
    return None


def crr_idempotency_label(obj: KubeObject) -> str | None:
    labels = metadata(obj).get("labels")
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
