"""Audit: request ids, one structured log line per create and delete, Events on the pod.

``RequestContextMiddleware`` gives every request an id (a sane incoming ``X-Request-Id``, or a
new one) and echoes it. Once a create or delete has authenticated, ``service.auth`` opens an
``AuditRecord`` in the request's state; the route completes it; the middleware writes it to
the ``crr_gateway.audit`` logger as one JSON line when the response starts, whatever its
status (403, 422, 429 and 5xx included). Tokens never appear in it.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.protocol import KubeObject

if TYPE_CHECKING:
    from service.auth import Caller

AUDIT_LOGGER = "crr_gateway.audit"
REQUEST_ID_HEADER = "X-Request-Id"
EVENT_REASON_CREATE = "RestartRequested"
EVENT_REASON_DELETE = "RestartDeleted"
COMPONENT = "crr-gateway"

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_STATE_ID = "crr_gateway_request_id"
_STATE_AUDIT = "crr_gateway_audit"
_MAX_FIELD = 512
_MAX_MESSAGE = 1024

audit_log = logging.getLogger(AUDIT_LOGGER)
log = logging.getLogger(__name__)


def sane_request_id(value: str | None) -> str | None:
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(value: Any) -> str | None:
    return value[:_MAX_FIELD] if isinstance(value, str) else None


@dataclass(slots=True)
class AuditRecord:
    action: str
    namespace: str
    caller: str
    groups: list[str]
    request_id: str
    pod: str | None = None
    containers: list[str] | None = None
    reason: str | None = None
    restart: str | None = None
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, status: int) -> str:
        if 200 <= status < 400:
            outcome = "success"
        elif status in (401, 403):
            outcome = "denied"
        elif status == 429:
            outcome = "throttled"
        else:
            outcome = "failure"
        return json.dumps(
            {
                "time": _now(),
                "requestId": self.request_id,
                "action": self.action,
                "caller": self.caller,
                "groups": self.groups,
                "namespace": self.namespace,
                "pod": self.pod,
                "containers": self.containers,
                "reason": self.reason,
                "restart": self.restart,
                "dryRun": self.dry_run,
                "status": status,
                "outcome": outcome,
                **self.extra,
            },
            separators=(",", ":"),
        )


def request_id_of(request: Request) -> str:
    state = request.scope.setdefault("state", {})
    value = state.get(_STATE_ID)
    if not isinstance(value, str):
        value = state[_STATE_ID] = new_request_id()
    return value


async def start_audit(
    request: Request, action: str, namespace: str, caller: Caller, request_id: str
) -> AuditRecord:
    """Open the audit record of this request (after authentication): what the body asks is
    read leniently now, so a denied or invalid request is audited with it too."""
    record = AuditRecord(
        action=action,
        namespace=namespace,
        caller=caller.name,
        groups=list(caller.groups),
        request_id=request_id,
    )
    if action == "create":
        record.dry_run = request.query_params.get("dryRun", "").lower() in ("true", "1")
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, RuntimeError):
            body = None
        if isinstance(body, dict):
            record.pod = _clip(body.get("pod"))
            record.reason = _clip(body.get("reason"))
            containers = body.get("containers")
            if isinstance(containers, list):
                record.containers = [c[:_MAX_FIELD] for c in containers[:64] if isinstance(c, str)]
    else:
        record.restart = _clip(request.path_params.get("name"))
    request.scope.setdefault("state", {})[_STATE_AUDIT] = record
    return record


class RequestContextMiddleware:
    """Request ids in and out; writes the audit line of the request, if it has one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = sane_request_id(incoming) or new_request_id()
        state = scope.setdefault("state", {})
        state[_STATE_ID] = request_id
        written = False

        def write(status: int) -> None:
            nonlocal written
            record = state.get(_STATE_AUDIT)
            if written or not isinstance(record, AuditRecord):
                return
            written = True
            audit_log.info(record.line(status))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                write(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            write(499)  # no response started (the client went away): still one line


# ------------------------------------------------------------------------------ Events

_INSTANCE = socket.gethostname()


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
) -> KubeObject:
    """A core/v1 Event on the pod (``kubectl describe pod`` shows it)."""
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
        "reportingInstance": _INSTANCE[:128],
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
