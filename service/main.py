"""``create_app(settings)``: the FastAPI app, its lifespan, error handlers and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import problems
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


def create_app(
    settings: Settings | None = None, *, kube_factory: KubeFactory | None = None
) -> FastAPI:
    """Build the service. Nothing touches Kubernetes until the lifespan starts."""
    settings = settings if settings is not None else get_settings()
    factory = kube_factory or default_kube_factory
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kube = await to_thread.run_sync(factory, settings)
        cache = RestartCache(kube, settings, metrics)
        operations = RestartOperations(kube, cache, settings, metrics)
        await cache.start()
        app.state.gateway = Gateway(settings, cache, operations, metrics)
        log.info("crr-gateway serving namespaces %s", ",".join(settings.namespaces))
        try:
            yield
        finally:
            app.state.gateway = None
            await cache.stop()
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
    app.dependency_overrides[get_settings] = lambda: settings
    problems.install(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(router)
    app.include_router(ops_router)
    return app
