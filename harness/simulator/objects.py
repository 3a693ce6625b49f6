"""Names and small helpers over plain-dict Kubernetes objects, shared by both node agents."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

GROUP = "apps.kruise.io"
PLURAL = "containerrecreaterequests"
CRD_NAME = f"{PLURAL}.{GROUP}"

LABEL_POD_UID = "crr.apps.kruise.io/pod-uid"
LABEL_NODE_NAME = "crr.apps.kruise.io/node-name"
LABEL_ACTIVE = "crr.apps.kruise.io/active"
ANNOTATION_SYNC_STATUSES = "crr.apps.kruise.io/sync-container-statuses"
ANNOTATION_UNREADY_ACQUIRED = "crr.apps.kruise.io/unready-acquired"
CONDITION_PRE_RECREATE_GRACE = "PreRecreateGrace"

PENDING = "Pending"
RECREATING = "Recreating"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
COMPLETED = "Completed"

RUNTIME = "containerd"
HOST_IP = "127.0.0.1"

WATCH_TIMEOUT_SECONDS = 30
REQUEST_TIMEOUT = (5.0, 15.0)
DAEMON_POLL_SECONDS = 1.0
DAEMON_WORKERS = 32
NODE_HEARTBEAT_SECONDS = 20.0
CONFLICT_RETRIES = 5


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 at second precision, as ``metav1.Time`` serialises."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def new_container_id() -> str:
    return f"{RUNTIME}://{secrets.token_hex(32)}"


def meta(obj: Obj) -> Obj:
    result: Obj = obj.get("metadata") or {}
    return result


def status_of(obj: Obj) -> Obj:
    result: Obj = obj.get("status") or {}
    return result


def strategy_of(crr: Obj) -> Obj:
    result: Obj = (crr.get("spec") or {}).get("strategy") or {}
    return result


def crr_phase(crr: Obj) -> str:
    return str(status_of(crr).get("phase") or "")


def is_finished(crr: Obj) -> bool:
    return bool(meta(crr).get("deletionTimestamp") or status_of(crr).get("completionTime"))


def crr_group_key(crr: Obj) -> str:
    """The daemon's queue key: ``namespace/spec.podName`` (its index is by pod *name*)."""
    return f"{meta(crr).get('namespace', '')}/{(crr.get('spec') or {}).get('podName', '')}"
