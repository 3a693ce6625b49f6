"""The rollouts resource: create, read (long-polls with ``?wait=``), list, follow (server-sent
events), and pause, resume or cancel. Reads come from the rollout cache; writes await the
rollout operations; the controller moves rollouts on (``service.rollouts``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response, StreamingResponse

from service.cache.rollouts import RolloutEntry
from service.core.errors import CacheNotReady, NamespaceNotServed, RolloutNotFound
from service.core.rollout_schemas import RolloutRequest
from service.http.cached_reads import long_poll, page, snapshots, stale_headers
from service.http.deps import (
    AppServices,
    AuthorizedGet,
    AuthorizedRolloutCancel,
    AuthorizedRolloutCreate,
    AuthorizedRolloutPause,
    AuthorizedRolloutResume,
    AuthorizedWatch,
    ContinueQuery,
    IdempotencyKeyHeader,
    NamespacePath,
    PageLimitQuery,
    ResourceVersionQuery,
    ResumeHeader,
    RolloutNamePath,
    ServicesDep,
    WaitQuery,
)
from service.http.responses import (
    ROLLOUT_ACTION_RESPONSES,
    ROLLOUT_CREATE_RESPONSES,
    ROLLOUT_EVENTS_RESPONSES,
    ROLLOUT_GET_RESPONSES,
    ROLLOUT_LIST_RESPONSES,
)
from service.http.streams import EarlyEnd, EventStreamResponse
from service.http.watch import AuthorizedListOrWatch, LastEventId

JSON = "application/json"


def _served(services: AppServices, namespace: str) -> None:
    if not services.settings.serves(namespace):
        raise NamespaceNotServed(f"namespace {namespace} is not served by this service")


def _entry_or_404(services: AppServices, namespace: str, name: str) -> RolloutEntry:
    entry = services.rollouts.get(namespace, name)
    if entry is None:
        if not services.rollouts.synced(namespace):
            raise CacheNotReady("the rollout cache has not synced yet; retry shortly")
        raise RolloutNotFound(f"rollout {name} not found in namespace {namespace}")
    return entry


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, status_code=status, media_type=JSON, headers=headers)


def _version(entry: RolloutEntry) -> str:
    return entry.rollout.resourceVersion


def _finished(entry: RolloutEntry) -> bool:
    return entry.rollout.finished


router = APIRouter(prefix="/v1", tags=["rollouts"])


@router.post(
    "/namespaces/{namespace}/rollouts",
    status_code=201,
    response_model=None,
    summary="Restart containers across a workload's pods in place, within a budget",
    responses=ROLLOUT_CREATE_RESPONSES,
)
async def create_rollout(
    namespace: NamespacePath,
    body: RolloutRequest,
    services: ServicesDep,
    authorized: AuthorizedRolloutCreate,
    dry_run: Annotated[
        bool,
        Query(
            alias="dryRun",
            description="answer the plan (the pods in restart order); create nothing",
        ),
    ] = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    _served(services, namespace)
    outcome = await services.rollout_operations.create(
        namespace,
        body,
        caller=authorized.caller,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        request_id=authorized.request_id,
    )
    if authorized.audit is not None:
        authorized.audit.extra["rollout"] = outcome.rollout.name
    location = f"/v1/namespaces/{namespace}/rollouts/{outcome.rollout.name}"
    status = 201 if outcome.created else 200
    return _json(outcome.body, status, {"Location": location})


@router.get(
    "/namespaces/{namespace}/rollouts/{name}",
    response_model=None,
    summary="A rollout; long-polls with ?wait=",
    responses=ROLLOUT_GET_RESPONSES,
)
async def get_rollout(
    namespace: NamespacePath,
    name: RolloutNamePath,
    services: ServicesDep,
    authorized: AuthorizedGet,
    wait: WaitQuery = 0,
    resource_version: ResourceVersionQuery = None,
) -> Response:
    _served(services, namespace)
    entry = await long_poll(
        services.rollouts,
        _entry_or_404(services, namespace, name),
        namespace,
        name,
        wait=min(wait, services.settings.max_wait_seconds),
        since=resource_version,
        version=_version,
        finished=_finished,
    )
    return _json(entry.body, headers=stale_headers(services.rollouts, namespace))


@router.get(
    "/namespaces/{namespace}/rollouts",
    response_model=None,
    summary="Rollouts of a namespace, by name; a stream of their changes with ?watch=true",
    responses=ROLLOUT_LIST_RESPONSES,
)
async def list_rollouts(
    namespace: NamespacePath,
    services: ServicesDep,
    listing: AuthorizedListOrWatch,
    finished: Annotated[bool | None, Query(description="only finished (or unfinished)")] = None,
    limit: PageLimitQuery = 100,
    continue_: ContinueQuery = None,
    last_event_id: LastEventId = None,
) -> Response:
    _served(services, namespace)
    if not services.rollouts.synced(namespace):
        raise CacheNotReady("the rollout cache has not synced yet; retry shortly")

    def keep(e: RolloutEntry) -> bool:
        return finished is None or e.rollout.finished == finished

    headers = stale_headers(services.rollouts, namespace)
    if listing.watch:
        return listing.rollouts(namespace, keep, last_event_id=last_event_id, headers=headers)
    body = page(
        services.rollouts.in_namespace(namespace),
        name=lambda e: e.rollout.name,
        keep=keep,
        limit=min(limit, services.settings.list_max_limit),
        continue_=continue_,
    )
    return _json(body, headers=headers)


@router.get(
    "/namespaces/{namespace}/rollouts/{name}/events",
    response_model=None,
    summary="Server-sent events: a rollout snapshot on every change, until it finishes",
    responses=ROLLOUT_EVENTS_RESPONSES,
)
async def rollout_events(
    namespace: NamespacePath,
    name: RolloutNamePath,
    services: ServicesDep,
    authorized: AuthorizedWatch,
    last_event_id: ResumeHeader = None,
) -> StreamingResponse:
    _served(services, namespace)
    early_end = EarlyEnd()
    stream = snapshots(
        services.rollouts,
        _entry_or_404(services, namespace, name),
        namespace,
        name,
        event="rollout",
        last_event_id=last_event_id,
        heartbeat=services.settings.sse_heartbeat_seconds,
        version=_version,
        finished=_finished,
        early_end=early_end,
    )
    return EventStreamResponse(
        stream,
        early_end=early_end,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _change(
    services: AppServices,
    namespace: str,
    name: str,
    action: Literal["pause", "resume", "cancel"],
    authorized: AuthorizedRolloutPause,
) -> Response:
    _served(services, namespace)
    entry = await services.rollout_operations.change(
        namespace, name, action, caller=authorized.caller, request_id=authorized.request_id
    )
    return _json(entry.body)


@router.post(
    "/namespaces/{namespace}/rollouts/{name}/pause",
    response_model=None,
    summary="Pause: start no more pods (running restarts finish)",
    responses=ROLLOUT_ACTION_RESPONSES,
)
async def pause_rollout(
    namespace: NamespacePath,
    name: RolloutNamePath,
    services: ServicesDep,
    authorized: AuthorizedRolloutPause,
) -> Response:
    return await _change(services, namespace, name, "pause", authorized)


@router.post(
    "/namespaces/{namespace}/rollouts/{name}/resume",
    response_model=None,
    summary="Resume a paused rollout (a failed pod stays failed; the next ones go on)",
    responses=ROLLOUT_ACTION_RESPONSES,
)
async def resume_rollout(
    namespace: NamespacePath,
    name: RolloutNamePath,
    services: ServicesDep,
    authorized: AuthorizedRolloutResume,
) -> Response:
    return await _change(services, namespace, name, "resume", authorized)


@router.post(
    "/namespaces/{namespace}/rollouts/{name}/cancel",
    response_model=None,
    summary="Cancel: start nothing more, delete restarts not started; running ones finish",
    responses=ROLLOUT_ACTION_RESPONSES,
)
async def cancel_rollout(
    namespace: NamespacePath,
    name: RolloutNamePath,
    services: ServicesDep,
    authorized: AuthorizedRolloutCancel,
) -> Response:
    return await _change(services, namespace, name, "cancel", authorized)
