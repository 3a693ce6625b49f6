"""The restarts resource: create, read (long-polls with ``?wait=``), list, follow (server-sent
events) and delete. Thin: reads are ``async def`` and answered from the cache (pre-encoded
bytes); writes await the operations, whose blocking calls run in worker threads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response, StreamingResponse

from service.cache.entries import Entry
from service.core.errors import CacheNotReady, NamespaceNotServed, RestartNotFound
from service.core.schemas import RestartRequest
from service.http.cached_reads import (
    long_poll,
    page,
    snapshots,
    stale_headers,
    warning_header,
)
from service.http.deps import (
    AppServices,
    AuthorizedCreate,
    AuthorizedDelete,
    AuthorizedGet,
    AuthorizedWatch,
    ContinueQuery,
    IdempotencyKeyHeader,
    NamePath,
    NamespacePath,
    PageLimitQuery,
    ResourceVersionQuery,
    ResumeHeader,
    ServicesDep,
    WaitQuery,
)
from service.http.responses import (
    CREATE_RESPONSES,
    DELETE_RESPONSES,
    EVENTS_RESPONSES,
    GET_RESPONSES,
    LIST_RESPONSES,
)
from service.http.streams import EarlyEnd, EventStreamResponse
from service.http.watch import AuthorizedListOrWatch, LastEventId

JSON = "application/json"


def _served(services: AppServices, namespace: str) -> None:
    if not services.settings.serves(namespace):
        raise NamespaceNotServed(f"namespace {namespace} is not served by this service")


def _entry_or_404(services: AppServices, namespace: str, name: str) -> Entry:
    entry = services.cache.get(namespace, name)
    if entry is None:
        if not services.cache.synced(namespace):
            raise CacheNotReady("the restart cache has not synced yet; retry shortly")
        raise RestartNotFound(f"restart {name} not found in namespace {namespace}")
    return entry


def _location(namespace: str, name: str) -> str:
    return f"/v1/namespaces/{namespace}/restarts/{name}"


def _json(entry_body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=entry_body, status_code=status, media_type=JSON, headers=headers)


def _version(entry: Entry) -> str:
    return entry.resource_version


def _finished(entry: Entry) -> bool:
    return entry.finished


router = APIRouter(prefix="/v1", tags=["restarts"])


@router.post(
    "/namespaces/{namespace}/restarts",
    status_code=201,
    response_model=None,
    summary="Restart containers of a pod in place",
    responses=CREATE_RESPONSES,
)
async def create_restart(
    namespace: NamespacePath,
    body: RestartRequest,
    services: ServicesDep,
    authorized: AuthorizedCreate,
    dry_run: Annotated[
        bool,
        Query(alias="dryRun", description="validate and dry-run the create; create nothing"),
    ] = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    _served(services, namespace)
    outcome = await services.operations.create(
        namespace,
        body,
        caller=authorized.caller,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        request_id=authorized.request_id,
    )
    restart = outcome.entry.restart
    if authorized.audit is not None:
        authorized.audit.restart, authorized.audit.containers = restart.name, restart.containers
    headers = {"Location": _location(namespace, restart.name)}
    if restart.warnings:
        headers["Warning"] = warning_header(restart.warnings)
    status = 201 if outcome.created else 200
    return _json(outcome.entry.body, status, headers)


@router.get(
    "/namespaces/{namespace}/restarts/{name}",
    response_model=None,
    summary="A restart; long-polls with ?wait=",
    responses=GET_RESPONSES,
)
async def get_restart(
    namespace: NamespacePath,
    name: NamePath,
    services: ServicesDep,
    authorized: AuthorizedGet,
    wait: WaitQuery = 0,
    resource_version: ResourceVersionQuery = None,
) -> Response:
    _served(services, namespace)
    entry = await long_poll(
        services.cache,
        _entry_or_404(services, namespace, name),
        namespace,
        name,
        wait=min(wait, services.settings.max_wait_seconds),
        since=resource_version,
        version=_version,
        finished=_finished,
    )
    return _json(entry.body, headers=stale_headers(services.cache, namespace))


@router.get(
    "/namespaces/{namespace}/restarts",
    response_model=None,
    summary="Restarts of a namespace, by name; a stream of their changes with ?watch=true",
    responses=LIST_RESPONSES,
)
async def list_restarts(
    namespace: NamespacePath,
    services: ServicesDep,
    listing: AuthorizedListOrWatch,
    pod: Annotated[str | None, Query(max_length=253, description="only this pod's")] = None,
    finished: Annotated[bool | None, Query(description="only finished (or unfinished)")] = None,
    limit: PageLimitQuery = 100,
    continue_: ContinueQuery = None,
    last_event_id: LastEventId = None,
) -> Response:
    _served(services, namespace)
    if not services.cache.synced(namespace):
        raise CacheNotReady("the restart cache has not synced yet; retry shortly")

    def keep(e: Entry) -> bool:
        return (pod is None or e.pod == pod) and (finished is None or e.finished == finished)

    headers = stale_headers(services.cache, namespace)
    if listing.watch:
        return listing.restarts(namespace, keep, last_event_id=last_event_id, headers=headers)
    body = page(
        services.cache.in_namespace(namespace),
        name=lambda e: e.name,
        keep=keep,
        limit=min(limit, services.settings.list_max_limit),
        continue_=continue_,
    )
    return _json(body, headers=headers)


@router.get(
    "/namespaces/{namespace}/restarts/{name}/events",
    response_model=None,
    summary="Server-sent events: a restart snapshot on every change, until it finishes",
    responses=EVENTS_RESPONSES,
)
async def restart_events(
    namespace: NamespacePath,
    name: NamePath,
    services: ServicesDep,
    authorized: AuthorizedWatch,
    last_event_id: ResumeHeader = None,
) -> StreamingResponse:
    _served(services, namespace)
    early_end = EarlyEnd()
    stream = snapshots(
        services.cache,
        _entry_or_404(services, namespace, name),
        namespace,
        name,
        event="restart",
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


@router.delete(
    "/namespaces/{namespace}/restarts/{name}",
    response_model=None,
    summary="Delete a restart (stops what has not run yet); returns its last state",
    responses=DELETE_RESPONSES,
)
async def delete_restart(
    namespace: NamespacePath, name: NamePath, services: ServicesDep, authorized: AuthorizedDelete
) -> Response:
    _served(services, namespace)
    entry = await services.operations.delete(
        namespace, name, caller=authorized.caller, request_id=authorized.request_id
    )
    if authorized.audit is not None:
        authorized.audit.pod, authorized.audit.containers = (
            entry.restart.pod,
            entry.restart.containers,
        )
    return _json(entry.body)
