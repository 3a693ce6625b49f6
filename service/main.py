"""``create_app(settings)``: the FastAPI app, its lifespan, error handlers and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import problems
from service.audit import RequestContextMiddleware
from service.auth import build_auth, load_tokens_file
from service.cache import RestartCache
from service.config import Settings, get_settings
from service.metrics import Metrics
from service.operations import RestartOperations
from service.protocol import KubeAPI
from service.routes import Gateway, ops_router, router

log = logging.getLogger(__name__)

KubeFactory = Callable[[Settings], KubeAPI]

DESCRIPTION = """\
Restart containers in place in running pods with one HTTP call, through OpenKruise
ContainerRecreateRequests, and follow each restart to its end (long-poll or server-sent
events) from a watch cache, without loading the apiserver.

Errors are `application/problem+json` (RFC 9457).
"""


def default_kube_factory(settings: Settings) -> KubeAPI:
    from service.kube import KubeClient  # the adapter: the only importer of `kubernetes`

    return KubeClient(
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
        request_timeout=settings.request_timeout_seconds,
    )


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


def begin_shutdown(app: FastAPI) -> None:
    """The process is about to stop: wake long polls and event streams so they answer and
    end instead of holding up the graceful shutdown. Safe from a signal handler."""
    gateway = getattr(app.state, "gateway", None)
    if gateway is not None:
        gateway.cache.drain_threadsafe()


def create_app(
    settings: Settings | None = None, *, kube_factory: KubeFactory | None = None
) -> FastAPI:
    """Build the service. Nothing touches Kubernetes until the lifespan starts."""
    settings = settings if settings is not None else get_settings()
    if settings.auth_mode == "static" and settings.auth_tokens_file is not None:
        load_tokens_file(settings.auth_tokens_file)  # refuse to build on a broken file
    factory = kube_factory or default_kube_factory
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kube = await to_thread.run_sync(factory, settings)
        cache = RestartCache(kube, settings, metrics)
        operations = RestartOperations(kube, cache, settings, metrics)
        await cache.start()
        app.state.gateway = Gateway(settings, cache, operations, metrics)
        app.state.auth = build_auth(settings, kube)
        log.info("crr-gateway serving namespaces %s", ",".join(settings.namespaces))
        try:
            yield
        finally:
            app.state.gateway = None
            app.state.auth = None
            await cache.stop()
            await operations.drain()
            await to_thread.run_sync(kube.close)

    app = FastAPI(
        title="crr-gateway",
        version="0.1.0",
        summary="Restart containers in place through OpenKruise ContainerRecreateRequests",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.gateway = None
    app.state.auth = None
    # No app.dependency_overrides here: with any override set, FastAPI re-analyses every
    # dependency of every request (signatures, pydantic adapters), which cut cached status
    # polls to about a third (BENCHMARKS.md). Routes read settings from app.state instead.
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContextMiddleware)  # outermost: ids and audit see every status
    app.include_router(router)
    app.include_router(ops_router)
    return app
