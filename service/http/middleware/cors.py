"""CORS for browser portals: Starlette's ``CORSMiddleware``, off unless origins are listed
(``CRR_GATEWAY_CORS_ORIGINS``). What a portal's page may send and read is fixed here.

It sits outside ``metrics`` and ``body_limit`` (``service.app``), so every answer to an allowed
origin carries ``Access-Control-Allow-Origin``, problem+json errors (401, 413, 500) included:
without it the browser hides the answer and the page sees only a network error. A preflight is
answered here, before any route, so it needs no token."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from service.http import problems

METHODS = ("GET", "POST", "DELETE")
# what a portal sends besides the CORS-safelisted headers: its token, a JSON body, safe retries
# of creates, resuming an event stream, and its own request id for the audit line
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-Id",
)
# what a portal's script may read: where a new restart is, warnings about it, the request id
# to quote to an operator, and when to retry a 429 or 503
EXPOSED_HEADERS = ("Location", "Warning", "X-Request-ID", "Retry-After")
PREFLIGHT_MAX_AGE_SECONDS = 600


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem+json like every other
    error (Starlette answers plain text); the headers, and so what a browser does, are
    Starlette's."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=list(origins),
            allow_methods=METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=False,  # bearer tokens, never cookies
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette says what it refused: "Disallowed CORS origin, method, headers"
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            key: value
            for key, value in response.headers.items()
            if key.lower() not in ("content-type", "content-length")
        }
        return problems.problem(
            response.status_code,
            detail=f"CORS preflight refused ({refused}): allowed are the configured origins, "
            f"methods {', '.join(METHODS)} and headers {', '.join(ALLOWED_HEADERS)}",
            headers=headers,
        )
