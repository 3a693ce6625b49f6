"""Request bodies: too large (413) or not JSON (415), refused before any route reads them."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http import problems


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``max_bytes`` (413, before reading them when
    Content-Length says so, as soon as the limit is passed otherwise) and bodies that are
    not JSON (415), as problem+json. No route sees them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if (length is not None and length.strip() not in ("", "0")) or chunked:
            content_type = headers.get("content-type")
            if content_type is not None and not _is_json(content_type):
                response = problems.problem(
                    415,
                    detail=f"the body must be application/json, not {content_type[:100]}",
                    instance=scope.get("path"),
                )
                await response(scope, receive, send)
                return
            if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
                response = problems.problem(413, detail=self._too_large, instance=scope.get("path"))
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, detail=self._too_large)
            return message

        await self.app(scope, limited_receive, send)

    @property
    def _too_large(self) -> str:
        return f"the body is larger than {self.max_bytes} bytes"
