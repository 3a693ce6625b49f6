"""Prometheus request metrics by route template, and the last resort for errors: an
unhandled exception becomes a problem+json 500 (no stack trace leaves the service)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http import problems
from service.metrics import Metrics


class MetricsMiddleware:
    """Counts and times requests by route template, and turns any unhandled exception
    into a problem+json 500 (no stack trace leaves the service)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                self._observe(scope, status, start)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:
                raise
            response = await problems.unhandled_error(Request(scope), exc)
            await response(scope, receive, send_wrapper)

    def _observe(self, scope: Scope, status: int, start: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = str(scope.get("method", ""))
        self.metrics.requests.labels(template, method, str(status)).inc()
        self.metrics.latency.labels(template, method).observe(time.perf_counter() - start)
