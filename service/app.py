"""``create_app(settings)``: the composition root. It builds the FastAPI app, its
middlewares, error handlers and routers; its lifespan builds the services (the Kubernetes
adapter, the cache, the operations, auth) and stops them. Nothing is built at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from service.auth.facade import build_auth
from service.auth.static_tokens import load_tokens_file
from service.cache.caches import Caches
from service.config import Settings, get_settings
from service.http import pages, problems
from service.http.deps import AppServices
from service.http.fast_reads import READS, FastReads, FastReadsApp
from service.http.middleware.body_limit import BodyLimitMiddleware
from service.http.middleware.cors import ProblemCORSMiddleware
from service.http.middleware.metrics import MetricsMiddleware
from service.http.middleware.request_context import RequestContextMiddleware
from service.http.routes import monitoring, restarts, rollouts
from service.http.watch import NamespaceWatches
from service.kube.port import KubeAPI
from service.kube.recorder import EventRecorder
from service.metrics import Metrics
from service.operations import RestartOperations
from service.rollouts.controller import RolloutController
from service.rollouts.operations import RolloutOperations

log = logging.getLogger(__name__)

KubeFactory = Callable[[Settings], KubeAPI]

DESCRIPTION = """\
Restart containers in place in running pods with one HTTP call, through OpenKruise
ContainerRecreateRequests, and follow each restart to its end (long-poll or server-sent
events) from a watch cache, without loading the apiserver. Rollouts restart containers across
a whole workload in place, never more than an availability budget at once.

Errors are `application/problem+json` (RFC 9457).
"""


def default_kube_factory(settings: Settings) -> KubeAPI:
    from service.kube.adapter import KubeClient  # the only importer of `kubernetes`

    return KubeClient(
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
        request_timeout=settings.request_timeout_seconds,
    )


def begin_shutdown(app: FastAPI) -> None:
    """The process is about to stop: wake long polls and event streams so they answer and
    end instead of holding up the graceful shutdown. Safe from a signal handler."""
    services: AppServices | None = getattr(app.state, "services", None)
    if services is not None:
        services.caches.drain_threadsafe()
    watches: NamespaceWatches | None = getattr(app.state, "namespace_watches", None)
    if watches is not None:
        watches.drain_threadsafe()


def create_app(
    settings: Settings | None = None,
    *,
    kube_factory: KubeFactory | None = None,
    fast_reads: bool = True,
) -> FastAPI:
    """Build the service. Nothing touches Kubernetes until the lifespan starts. ``fast_reads``
    False leaves every request to the routes (the tests compare both ways)."""
    settings = settings if settings is not None else get_settings()
    if settings.auth_mode == "static" and settings.auth_tokens_file is not None:
        load_tokens_file(settings.auth_tokens_file)  # refuse to build on a broken file
    factory = kube_factory or default_kube_factory
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kube = await to_thread.run_sync(factory, settings)
        caches = Caches.build(kube, settings, metrics)
        cache, pods = caches.restarts, caches.pods
        rollouts, budgets = caches.rollouts, caches.budgets
        recorder = EventRecorder(kube, enabled=settings.record_events)
        operations = RestartOperations(kube, cache, settings, metrics, pods=pods, recorder=recorder)
        rollout_operations = RolloutOperations(kube, rollouts, pods, settings, metrics, recorder)
        controller = RolloutController(kube, rollouts, cache, pods, budgets, settings, metrics)
        # before the caches start, so the namespace watch streams' feeds see every change
        app.state.namespace_watches = NamespaceWatches(caches.restarts, caches.rollouts, settings)
        await caches.start()
        await controller.start()
        app.state.services = AppServices(
            settings=settings,
            cache=cache,
            operations=operations,
            metrics=metrics,
            rollouts=rollouts,
            rollout_operations=rollout_operations,
            pods=pods,
            budgets=budgets,
            caches=caches,
        )
        app.state.auth = build_auth(settings, kube)
        log.info("crr-gateway serving namespaces %s", ",".join(settings.namespaces))
        try:
            yield
        finally:
            app.state.services = None
            app.state.auth = None
            app.state.namespace_watches = None
            await controller.stop()
            await caches.stop()
            await recorder.drain()
            await to_thread.run_sync(kube.close)

    app = FastReadsApp(
        title="crr-gateway",
        version="0.1.0",
        summary="Restart containers in place through OpenKruise ContainerRecreateRequests",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # service.http.pages serves /docs from files in the package
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.services = None
    app.state.auth = None
    # No app.dependency_overrides here: with any override set, FastAPI re-analyses every
    # dependency of every request (signatures, pydantic adapters), which costs the cached
    # status polls dearly (BENCHMARKS.md, "Tuning done from these figures"). Routes read
    # settings from app.state instead.
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:  # outside metrics: its 500s, and every error, carry CORS too
        app.add_middleware(ProblemCORSMiddleware, origins=settings.cors_origins)
    app.add_middleware(RequestContextMiddleware)  # outermost: ids and audit see every status
    if fast_reads:  # before all of them: cached polls answered from memory, the rest go on
        app.fast_reads = FastReads(app.state, metrics, READS)
    app.include_router(restarts.router)
    app.include_router(rollouts.router)
    app.include_router(monitoring.router)
    pages.install(app)  # /docs and /ui/
    return app
