"""The core/v1 Events recorded on a pod for every restart create and delete, and on the workload
(or each pod of a selector) for every rollout create, pause, resume and cancel (``kubectl
describe`` shows them): their bodies and messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from service.core.objects import KubeObject

EVENT_REASON_CREATE = "RestartRequested"
EVENT_REASON_DELETE = "RestartDeleted"
ROLLOUT_EVENT_REASONS = {
    "create": "RolloutStarted",
    "pause": "RolloutPaused",
    "resume": "RolloutResumed",
    "cancel": "RolloutCancelled",
}
COMPONENT = "crr-gateway"
_MAX_MESSAGE = 1024


def _event_prefix(name: str) -> str:
    # core/v1 accepts a generateName ending in "."; events.k8s.io would not: use "-"
    return name[:200].rstrip(".-") + "-crr-gateway-"


def restart_event(
    *,
    namespace: str,
    pod: str,
    pod_uid: str | None,
    reason: str,
    message: str,
    instance: str,
) -> KubeObject:
    """A core/v1 Event on the pod, reported by ``instance`` (this replica's host name)."""
    involved: KubeObject = {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": pod}
    if pod_uid:
        involved["uid"] = pod_uid
    return object_event(involved, reason=reason, message=message, instance=instance)


def object_event(involved: KubeObject, *, reason: str, message: str, instance: str) -> KubeObject:
    """A core/v1 Event on ``involved`` (an object reference: apiVersion, kind, namespace, name,
    uid), reported by ``instance``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": _event_prefix(str(involved["name"])),
            "namespace": involved["namespace"],
        },
        "involvedObject": involved,
        "reason": reason,
        "type": "Normal",
        "message": message[:_MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def create_message(
    caller: str, containers: Sequence[str], restart: str, reason: str | None, request_id: str
) -> str:
    text = f"{caller} requested a restart of container(s) {', '.join(containers)} ({restart})"
    if reason:
        text += f": {reason}"
    return f"{text} [request {request_id}]"


def delete_message(caller: str, restart: str, request_id: str) -> str:
    return f"{caller} deleted restart {restart} [request {request_id}]"


def rollout_message(
    caller: str, action: str, rollout: str, reason: str | None, request_id: str
) -> str:
    verbs = {"create": "started", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
    text = f"{caller} {verbs.get(action, action)} rollout {rollout} (in-place restarts)"
    if reason:
        text += f": {reason}"
    return f"{text} [request {request_id}]"
