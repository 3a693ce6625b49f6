"""Request ids in and out, and the audit line (``service.http.audit``) of the request."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.audit import (
    REQUEST_ID_HEADER,
    audit_log,
    audit_record_of,
    new_request_id,
    sane_request_id,
    set_request_id,
)


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
        set_request_id(state, request_id)
        written = False

        def write(status: int) -> None:
            nonlocal written
            record = audit_record_of(state)
            if written or record is None:
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
