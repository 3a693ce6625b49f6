"""The ``RestartRollout`` object: how a checked request becomes one, how one reads as the API's
``Rollout``, and the restart request each of its pods gets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from service.core.crr import (
    IDEMPOTENCY_KEY_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    REASON_ANNOTATION,
    REQUEST_HASH_ANNOTATION,
    REQUEST_ID_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
)
from service.core.objects import KubeObject
from service.core.pods import Pod, format_time, parse_time
from service.core.rollout_schemas import (
    LabelSelector,
    Rollout,
    RolloutCounts,
    RolloutPod,
    RolloutRequest,
    Target,
)
from service.core.rollouts import API_VERSION, FINISHED_PHASES, KIND, counts, describe_target
from service.core.schemas import RestartRequest

_STRATEGY_FIELDS = (
    "failurePolicy",
    "orderedRecreate",
    "unreadyGracePeriodSeconds",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "terminationGracePeriodSeconds",
    "minStartedSeconds",
    "forceRecreate",
)


def rollout_request_hash(request: RolloutRequest) -> str:
    """Hash of the request with defaults applied: two bodies meaning the same hash alike."""
    encoded = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def build_rollout(
    *,
    namespace: str,
    name: str,
    request: RolloutRequest,
    target: Mapping[str, str] | None,
    pod_selector: Mapping[str, Any],
    plan: Sequence[Pod],
    left_out: Sequence[tuple[Pod, str]],
    resolved_max_unavailable: int,
    requested_by: str,
    body_hash: str,
    idempotency: str | None,
    request_id: str | None,
    now: datetime,
) -> KubeObject:
    """The object to create: the plan in ``spec.pods`` and a first status (every planned pod
    ``Waiting``, the selected pods that cannot be restarted ``Skipped`` with the reason)."""
    template = {
        key: value for key in _STRATEGY_FIELDS if (value := getattr(request, key)) is not None
    }
    spec: KubeObject = {
        "podSelector": dict(pod_selector),
        "maxUnavailable": request.maxUnavailable,
        "resolvedMaxUnavailable": resolved_max_unavailable,
        "minReadySeconds": request.minReadySeconds,
        "pauseOnFailure": request.pauseOnFailure,
        "paused": False,
        "cancelled": False,
        "restartTemplate": template,
        "pods": [{"name": p.name, "uid": p.uid} for p in plan],
    }
    if target is not None:
        spec["target"] = dict(target)
    if request.selector is not None:
        spec["selector"] = request.selector.model_dump(exclude_none=True)
    if request.containers is not None:
        spec["containers"] = list(request.containers)
    if request.reason is not None:
        spec["reason"] = request.reason
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    if idempotency is not None:
        labels[IDEMPOTENCY_KEY_LABEL] = idempotency
    annotations = {REQUESTED_BY_ANNOTATION: requested_by, REQUEST_HASH_ANNOTATION: body_hash}
    if request.reason is not None:
        annotations[REASON_ANNOTATION] = request.reason
    if request_id is not None:
        annotations[REQUEST_ID_ANNOTATION] = request_id
    entries = [{"name": p.name, "uid": p.uid, "state": "Waiting"} for p in plan]
    entries += [
        {"name": p.name, "uid": p.uid, "state": "Skipped", "message": why} for p, why in left_out
    ]
    tally = counts(entries)
    done = len(entries) - tally["Waiting"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": {
            "phase": "Progressing",
            "message": "",
            "progress": f"{done}/{len(entries)}",
            "targetDescription": describe_target(spec),
            "unavailable": 0,
            "pods": entries,
            "startedAt": format_time(now),
        },
    }


def restart_request_for(rollout: KubeObject, pod: str) -> RestartRequest:
    """The restart one pod of the rollout gets: the rollout's strategy and reason."""
    spec = rollout.get("spec") or {}
    name = str((rollout.get("metadata") or {}).get("name", ""))
    reason = spec.get("reason") or f"rollout {name}"
    return RestartRequest.model_validate(
        {
            "pod": pod,
            "containers": spec.get("containers"),
            "reason": reason,
            **(spec.get("restartTemplate") or {}),
        },
        strict=False,
    )


def _annotations(obj: KubeObject) -> Mapping[str, Any]:
    annotations = (obj.get("metadata") or {}).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def rollout_request_hash_of(obj: KubeObject) -> str | None:
    value = _annotations(obj).get(REQUEST_HASH_ANNOTATION)
    return value if isinstance(value, str) else None


def rollout_idempotency_label(obj: KubeObject) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels")
    value = labels.get(IDEMPOTENCY_KEY_LABEL) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None


def rollout_from_object(obj: KubeObject) -> Rollout:
    """Read a ``RestartRollout`` as the API's rollout."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    entries = [p for p in status.get("pods") or [] if isinstance(p, dict)]
    if not entries:  # not stepped yet: the plan, all waiting
        entries = [{"name": p.get("name", ""), "state": "Waiting"} for p in spec.get("pods") or []]
    target = spec.get("target")
    selector = spec.get("selector")
    phase = status.get("phase") or "Progressing"
    if phase not in FINISHED_PHASES:
        # a pause or resume shows at once, before the controller's next step writes it
        phase = "Paused" if spec.get("paused") and not spec.get("cancelled") else "Progressing"
    tally = counts(entries)
    return Rollout(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        target=Target(
            kind=str(target.get("kind", "")),
            name=str(target.get("name", "")),
            apiVersion=target.get("apiVersion"),
        )
        if isinstance(target, dict)
        else None,
        selector=LabelSelector.model_validate(selector) if isinstance(selector, dict) else None,
        containers=list(spec["containers"]) if isinstance(spec.get("containers"), list) else None,
        maxUnavailable=spec.get("maxUnavailable", 1),
        resolvedMaxUnavailable=int(spec.get("resolvedMaxUnavailable") or 1),
        minReadySeconds=int(spec.get("minReadySeconds") or 0),
        pauseOnFailure=bool(spec.get("pauseOnFailure", True)),
        phase=phase,
        finished=phase in FINISHED_PHASES,
        paused=bool(spec.get("paused")),
        pods=[
            RolloutPod(
                pod=str(e.get("name", "")),
                state=e.get("state", "Waiting"),
                restart=e.get("restart") or None,
                message=str(e.get("message") or ""),
            )
            for e in entries
        ],
        counts=RolloutCounts(**tally),
        unavailable=int(status.get("unavailable") or 0),
        message=str(status.get("message") or ""),
        createdAt=parse_time(meta.get("creationTimestamp")),
        completedAt=parse_time(status.get("completionTime")),
        requestedBy=_annotations(obj).get(REQUESTED_BY_ANNOTATION),
        reason=spec.get("reason"),
        resourceVersion=str(meta.get("resourceVersion") or ""),
    )
