"""The core/v1 Events recorded on a pod for every create and delete (``kubectl describe pod``
shows them): their bodies and messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from service.core.objects import KubeObject

EVENT_REASON_CREATE = "RestartRequested"
EVENT_REASON_DELETE = "RestartDeleted"
COMPONENT = "crr-gateway"
_MAX_MESSAGE = 1024


def _event_prefix(pod: str) -> str:
    # core/v1 accepts a generateName ending in "."; events.k8s.io would not: use "-"
    return pod[:200].rstrip(".-") + "-crr-gateway-"


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
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved: KubeObject = {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": pod}
    if pod_uid:
        involved["uid"] = pod_uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": _event_prefix(pod), "namespace": namespace},
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
