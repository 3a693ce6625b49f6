"""The restarts resource: create, read (long-polls with ``?wait=``), list, follow (server-sent
events) and delete. Thin: reads are ``async def`` and answered from the cache (pre-encoded
bytes); writes await the operations, whose blocking calls run in worker threads."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import Response, StreamingResponse

from service.cache.entries import Entry
from service.core.errors import CacheNotReady, NamespaceNotServed, RequestInvalid, RestartNotFound
from service.core.schemas import RestartRequest
from service.http.deps import (
    AppServices,
    AuthorizedCreate,
    AuthorizedDelete,
    AuthorizedGet,
    AuthorizedList,
    AuthorizedWatch,
    NamePath,
    NamespacePath,
    ServicesDep,
)
from service.http.responses import (
    CREATE_RESPONSES,
    DELETE_RESPONSES,
    EVENTS_RESPONSES,
    GET_RESPONSES,
    LIST_RESPONSES,
)

JSON = "application/json"
# printable ASCII (RFC 9110 visible characters and space): never a control character
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"


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


def _warning_header(warnings: list[str]) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ", ".join(f"299 - {quoted(w)}" for w in warnings)


def _json(entry_body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=entry_body, status_code=status, media_type=JSON, headers=headers)


def _stale_headers(services: AppServices, namespace: str) -> dict[str, str] | None:
    """A 299 warning on answers from the cache while its watch has lost the apiserver."""
    since = services.cache.stale_since(namespace)
    if since is None:
        return None
    when = since.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"Warning": _warning_header([f"stale: apiserver unreachable since {when}"])}


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
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="the same key with the same body returns the same restart "
            "(printable ASCII)",
        ),
    ] = None,
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
        headers["Warning"] = _warning_header(restart.warnings)
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
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=60,
            description="seconds to wait for a change from resourceVersion (or from the "
            "current state) unless the restart has finished",
        ),
    ] = 0,
    resource_version: Annotated[
        str | None,
        Query(alias="resourceVersion", max_length=64, description="the version you have"),
    ] = None,
) -> Response:
    _served(services, namespace)
    entry = _entry_or_404(services, namespace, name)
    wait = min(wait, services.settings.max_wait_seconds)
    if wait > 0 and not entry.restart.finished:
        since = resource_version if resource_version is not None else entry.restart.resourceVersion
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not entry.restart.finished and entry.restart.resourceVersion == since:
            remaining = deadline - loop.time()
            if services.cache.draining:  # shutting down: answer now, the client polls again
                break
            if remaining <= 0:
                break
            await services.cache.wait_change(namespace, name, remaining)
            latest = services.cache.get(namespace, name)
            if latest is None:
                break
            entry = latest
    return _json(entry.body, headers=_stale_headers(services, namespace))


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    invalid = RequestInvalid("continue: not a token this service issued")
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise invalid from e
    if not name or _encode_token(name) != token:
        raise invalid
    return name


@router.get(
    "/namespaces/{namespace}/restarts",
    response_model=None,
    summary="Restarts of a namespace, by name",
    responses=LIST_RESPONSES,
)
async def list_restarts(
    namespace: NamespacePath,
    services: ServicesDep,
    authorized: AuthorizedList,
    pod: Annotated[str | None, Query(max_length=253, description="only this pod's")] = None,
    finished: Annotated[bool | None, Query(description="only finished (or unfinished)")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 100,
    continue_: Annotated[
        str | None, Query(alias="continue", max_length=1024, description="from the last page")
    ] = None,
) -> Response:
    _served(services, namespace)
    if not services.cache.synced(namespace):
        raise CacheNotReady("the restart cache has not synced yet; retry shortly")
    after = _decode_token(continue_) if continue_ else None
    limit = min(limit, services.settings.list_max_limit)
    page: list[bytes] = []
    token: str | None = None
    last_name = ""
    for entry in services.cache.in_namespace(namespace):
        restart = entry.restart
        if after is not None and restart.name <= after:
            continue
        if pod is not None and restart.pod != pod:
            continue
        if finished is not None and restart.finished != finished:
            continue
        if len(page) == limit:
            token = _encode_token(last_name)
            break
        page.append(entry.body)
        last_name = restart.name
    body = b'{"items":[' + b",".join(page) + b'],"continue":' + json.dumps(token).encode() + b"}"
    return _json(body, headers=_stale_headers(services, namespace))


def _sse(entry: Entry) -> bytes:
    return (
        b"event: restart\nid: "
        + entry.restart.resourceVersion.encode()
        + b"\ndata: "
        + entry.body
        + b"\n\n"
    )


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
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64, description="resume")
    ] = None,
) -> StreamingResponse:
    _served(services, namespace)
    first = _entry_or_404(services, namespace, name)
    heartbeat = services.settings.sse_heartbeat_seconds
    cache = services.cache

    async def stream() -> AsyncIterator[bytes]:
        entry = first
        sent = last_event_id
        yield b"retry: 3000\n\n"
        while True:
            if entry.restart.resourceVersion != sent:
                yield _sse(entry)
                sent = entry.restart.resourceVersion
            # finished, or this replica is shutting down (the client reconnects with
            # Last-Event-ID, to another replica)
            if entry.restart.finished or cache.draining:
                return
            await cache.wait_change(namespace, name, heartbeat)
            latest = cache.get(namespace, name)
            if latest is None:
                return
            if latest is entry and not cache.draining:
                yield b": heartbeat\n\n"
            entry = latest

    return StreamingResponse(
        stream(),
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
