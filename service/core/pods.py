"""A pod as the rules read it (from the pod cache or the apiserver): name, labels, owner,
readiness and container IDs. Lenient: a missing or mistyped field reads as empty."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from service.core.objects import KubeObject


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def pod_name(pod: KubeObject) -> str:
    return str(_meta(pod).get("name", ""))


def pod_uid(pod: KubeObject) -> str:
    return str(_meta(pod).get("uid", ""))


def pod_labels(pod: KubeObject) -> Mapping[str, str]:
    labels = _meta(pod).get("labels")
    return labels if isinstance(labels, dict) else {}


def pod_containers(pod: KubeObject) -> list[str]:
    spec = pod.get("spec") or {}
    return [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]


def controller_uid(pod: KubeObject) -> str | None:
    owner = controller_of(pod)
    return owner[1] if owner is not None else None


def controller_of(pod: KubeObject) -> tuple[str, str] | None:
    """(kind, uid) of the object that controls ``pod`` (its controller ownerReference)."""
    for owner in _meta(pod).get("ownerReferences") or []:
        if isinstance(owner, dict) and owner.get("controller"):
            return str(owner.get("kind", "")), str(owner.get("uid", ""))
    return None


def _condition(pod: KubeObject, kind: str) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return None


def pod_ready(pod: KubeObject) -> bool:
    condition = _condition(pod, "Ready")
    return (
        condition is not None
        and condition.get("status") == "True"
        and not _meta(pod).get("deletionTimestamp")
    )


def ready_since(pod: KubeObject) -> datetime | None:
    condition = _condition(pod, "Ready")
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def container_ids(pod: KubeObject, names: Iterable[str] | None = None) -> dict[str, str]:
    wanted = set(names) if names is not None else None
    ids: dict[str, str] = {}
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        name = str(status.get("name", ""))
        if (wanted is None or name in wanted) and status.get("containerID"):
            ids[name] = str(status["containerID"])
    return ids


def ordinal(name: str) -> int:
    """A StatefulSet pod's ordinal (``web-3`` -> 3); -1 when the name has none."""
    head, _, tail = name.rpartition("-")
    return int(tail) if head and tail.isdigit() else -1


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
