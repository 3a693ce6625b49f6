"""Liveness, readiness and metrics: for the kubelet's probes and Prometheus. No token (the
NetworkPolicy restricts who reaches them); tagged "operations" in the OpenAPI document."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from service.http.deps import services_of
from service.http.problems import problem
from service.http.responses import problem_response

JSON = "application/json"

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness", responses={200: {"description": "alive"}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every watch cache has synced and the apiserver is reachable",
    response_model=None,
    responses={200: {"description": "ready"}, 503: problem_response("not ready")},
)
async def readyz(request: Request) -> Response:
    services = services_of(request)
    if services is None:
        return problem(503, detail="starting", instance="/readyz")
    # "scopes": each served scope over every cache; "caches": each cache's own scopes
    caches = services.caches
    checks = {"scopes": caches.scope_status(), "caches": caches.by_cache()}
    if caches.ready:
        return Response(content=json.dumps({"status": "ok", **checks}).encode(), media_type=JSON)
    return problem(
        503,
        detail="a watch cache (restarts, pods, rollouts or disruption budgets) has not synced, "
        "or the apiserver is unreachable",
        instance="/readyz",
        extra=checks,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
