"""HTTP routes; thin. Reads are ``async def`` and answered from the cache (pre-encoded
bytes); writes await the operations, whose blocking calls run in worker threads."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response, StreamingResponse

from service.auth import CreateCall, DeleteCall, ListCall, ReadCall, WatchCall
from service.cache import Entry, RestartCache
from service.config import Settings
from service.errors import CacheNotReady, NamespaceNotServed, RequestInvalid, RestartNotFound
from service.metrics import Metrics
from service.operations import RestartOperations
from service.problems import PROBLEM_JSON, problem
from service.schemas import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    Problem,
    Restart,
    RestartList,
    RestartRequest,
)

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the routes need, built by the app's lifespan and kept in ``app.state``."""

    settings: Settings
    cache: RestartCache
    operations: RestartOperations
    metrics: Metrics


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise CacheNotReady("the service is starting")
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
NamespacePath = Annotated[
    str,
    Path(min_length=1, max_length=63, pattern=DNS1123_LABEL, description="Kubernetes namespace"),
]
NamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
        description="restart name (a DNS-1123 subdomain, as every Kubernetes object name)",
    ),
]
# printable ASCII (RFC 9110 visible characters and space): never a control character
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
STALE_HEADER = {
    "Warning": {
        "description": '`299 - "stale: ..."` while the watch has lost the apiserver: the '
        "answer is the last state seen, changes since then are not in it yet",
        "schema": {"type": "string"},
    }
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_JSON: {}}}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("no bearer token, or one that does not authenticate"),
    403: _problem("the namespace is not served, or the caller may not do this there"),
    422: _problem("the request is not valid"),
    503: _problem("not ready, the apiserver is unreachable, or OpenKruise is missing"),
}


def _served(gateway: Gateway, namespace: str) -> None:
    if not gateway.settings.serves(namespace):
        raise NamespaceNotServed(f"namespace {namespace} is not served by this service")


def _entry_or_404(gateway: Gateway, namespace: str, name: str) -> Entry:
    entry = gateway.cache.get(namespace, name)
    if entry is None:
        if not gateway.cache.synced(namespace):
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


def _stale_headers(gateway: Gateway, namespace: str) -> dict[str, str] | None:
    """A 299 warning on answers from the cache while its watch has lost the apiserver."""
    since = gateway.cache.stale_since(namespace)
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
    responses={
        200: {
            "description": "dry run, or a repeat of an earlier request with the same "
            "Idempotency-Key",
            "model": Restart,
        },
        201: {
            "description": "created",
            "model": Restart,
            "headers": {
                "Location": {"description": "the restart", "schema": {"type": "string"}},
                "Warning": {
                    "description": "299 warnings, also in the body",
                    "schema": {"type": "string"},
                },
            },
        },
        404: _problem("the pod does not exist"),
        409: _problem(
            "the pod is not active or not scheduled, a container has no containerID yet, a "
            "restart is already active on the pod, or the name is taken"
        ),
        422: _problem(
            "the body is not valid, names unknown or duplicate containers, reuses an "
            "Idempotency-Key with another body, or Kubernetes refused it"
        ),
        401: COMMON_ERRORS[401],
        403: COMMON_ERRORS[403],
        429: _problem(
            "the caller's rate limit is spent, or the namespace has too many active "
            "restarts (see Retry-After)"
        ),
        400: _problem("the body cannot be decoded (not UTF-8 JSON, or nested too deeply)"),
        413: _problem("the body is larger than the configured limit"),
        415: _problem("the body is not JSON"),
        503: COMMON_ERRORS[503],
        504: _problem("the apiserver did not answer in time"),
    },
)
async def create_restart(
    namespace: NamespacePath,
    body: RestartRequest,
    gateway: GatewayDep,
    call: CreateCall,
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
    _served(gateway, namespace)
    outcome = await gateway.operations.create(
        namespace,
        body,
        caller=call.caller,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        request_id=call.request_id,
    )
    restart = outcome.entry.restart
    if call.audit is not None:
        call.audit.restart, call.audit.containers = restart.name, restart.containers
    headers = {"Location": _location(namespace, restart.name)}
    if restart.warnings:
        headers["Warning"] = _warning_header(restart.warnings)
    status = 201 if outcome.created else 200
    return _json(outcome.entry.body, status, headers)


@router.get(
    "/namespaces/{namespace}/restarts/{name}",
    response_model=None,
    summary="A restart; long-polls with ?wait=",
    responses={
        200: {"description": "the restart", "model": Restart, "headers": STALE_HEADER},
        404: _problem("no such restart (or its retention has passed)"),
        **COMMON_ERRORS,
    },
)
async def get_restart(
    namespace: NamespacePath,
    name: NamePath,
    gateway: GatewayDep,
    call: ReadCall,
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
    _served(gateway, namespace)
    entry = _entry_or_404(gateway, namespace, name)
    wait = min(wait, gateway.settings.max_wait_seconds)
    if wait > 0 and not entry.restart.finished:
        since = resource_version if resource_version is not None else entry.restart.resourceVersion
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not entry.restart.finished and entry.restart.resourceVersion == since:
            remaining = deadline - loop.time()
            if gateway.cache.draining:  # shutting down: answer now, the client polls again
                break
            if remaining <= 0:
                break
            await gateway.cache.wait_change(namespace, name, remaining)
            latest = gateway.cache.get(namespace, name)
            if latest is None:
                break
            entry = latest
    return _json(entry.body, headers=_stale_headers(gateway, namespace))


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
    responses={
        200: {"description": "a page of restarts", "model": RestartList, "headers": STALE_HEADER},
        **COMMON_ERRORS,
    },
)
async def list_restarts(
    namespace: NamespacePath,
    gateway: GatewayDep,
    call: ListCall,
    pod: Annotated[str | None, Query(max_length=253, description="only this pod's")] = None,
    finished: Annotated[bool | None, Query(description="only finished (or unfinished)")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 100,
    continue_: Annotated[
        str | None, Query(alias="continue", max_length=1024, description="from the last page")
    ] = None,
) -> Response:
    _served(gateway, namespace)
    if not gateway.cache.synced(namespace):
        raise CacheNotReady("the restart cache has not synced yet; retry shortly")
    after = _decode_token(continue_) if continue_ else None
    limit = min(limit, gateway.settings.list_max_limit)
    page: list[bytes] = []
    token: str | None = None
    last_name = ""
    for entry in gateway.cache.in_namespace(namespace):
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
    return _json(body, headers=_stale_headers(gateway, namespace))


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
    responses={
        200: {
            "description": "`event: restart` with the restart as `data` and its "
            "resourceVersion as `id`, on every change; comment heartbeats in between; "
            "the stream ends after the finished snapshot",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        404: _problem("no such restart"),
        **COMMON_ERRORS,
    },
)
async def restart_events(
    namespace: NamespacePath,
    name: NamePath,
    gateway: GatewayDep,
    call: WatchCall,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64, description="resume")
    ] = None,
) -> StreamingResponse:
    _served(gateway, namespace)
    first = _entry_or_404(gateway, namespace, name)
    heartbeat = gateway.settings.sse_heartbeat_seconds
    cache = gateway.cache

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
    responses={
        200: {"description": "the restart's last state", "model": Restart},
        404: _problem("no such restart"),
        **COMMON_ERRORS,
        504: _problem("the apiserver did not answer in time"),
    },
)
async def delete_restart(
    namespace: NamespacePath, name: NamePath, gateway: GatewayDep, call: DeleteCall
) -> Response:
    _served(gateway, namespace)
    entry = await gateway.operations.delete(
        namespace, name, caller=call.caller, request_id=call.request_id
    )
    if call.audit is not None:
        call.audit.pod, call.audit.containers = entry.restart.pod, entry.restart.containers
    return _json(entry.body)


# ---------------------------------------------------------------- operations endpoints

ops_router = APIRouter(tags=["operations"])


@ops_router.get("/healthz", summary="Liveness", responses={200: {"description": "alive"}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops_router.get(
    "/readyz",
    summary="Readiness: the cache has synced and the apiserver is reachable",
    response_model=None,
    responses={200: {"description": "ready"}, 503: _problem("not ready")},
)
async def readyz(request: Request) -> Response:
    gateway: Gateway | None = getattr(request.app.state, "gateway", None)
    if gateway is None:
        return problem(503, detail="starting", instance="/readyz")
    checks = gateway.cache.scope_status()
    if gateway.cache.ready:
        return Response(
            content=json.dumps({"status": "ok", "scopes": checks}).encode(), media_type=JSON
        )
    return problem(
        503,
        detail="the restart cache has not synced, or the apiserver is unreachable",
        instance="/readyz",
        extra={"scopes": checks},
    )


@ops_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
