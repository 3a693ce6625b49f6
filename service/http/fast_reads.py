"""The hot read, answered before the framework: ``GET /v1/namespaces/{ns}/restarts/{name}``
(and ``.../rollouts/{name}``) when everything it needs is already in memory.

A status poll is a dictionary lookup and pre-encoded bytes (``service.cache``), yet through
FastAPI most of its time went to resolving and validating the route's declared parameters and
dependencies on every request (BENCHMARKS.md, "Polls near the server's limit"). So the app
(``FastReadsApp``) first asks this plain ASGI code, which answers a poll itself only when
every step is a memory hit that cannot refuse:

* the path is exactly one of the two reads, with names the route would accept, and the query
  is empty or a plain ``wait``/``resourceVersion``;
* nothing another middleware would act on is present (a request body, an ``Origin``);
* the caller's token and its ``get`` access in the namespace are both cached as allowed by
  ``service.auth`` (``Auth.recall``), no rate limit applies to reads, and the namespace is
  served;
* the object is in the cache.

A long poll that must wait (``?wait=N``, the object unfinished and still at the version given)
waits here, on the same store waiter and with the same ``long_poll`` as the route, and answers
with what holds when it wakes: at ten thousand followers of one object, each one woken through
FastAPI's route and five middleware send wrappers was most of the fan-out's time (BENCHMARKS.md,
"Followers"). A change that ends the poll is even answered from the store's wake itself
(``_EarlyAnswer``, ``service.http.sending``), before the task resumes. Everything else (misses,
refusals, anything unusual) goes on to the FastAPI app unchanged, which stays the one
description of the API (``openapi.yaml``) and answers every error. What this answers is byte
for byte what the route answers: the same body, ``Content-Type``, stale ``Warning``,
``X-Request-Id`` and metrics series (tests/unit/http/test_fast_reads.py sends every case
through both paths). Reads are not audited, so no audit record is skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from service.core.schemas import DNS1123_LABEL, DNS1123_SUBDOMAIN
from service.http.audit import new_request_id, sane_request_id
from service.http.cached_reads import WatchedStore, long_poll, stale_headers
from service.http.deps import MAX_TOKEN_LENGTH, MAX_WAIT_SECONDS
from service.http.sending import send_now
from service.metrics import Metrics

log = logging.getLogger(__name__)

_LABEL = re.compile(DNS1123_LABEL)
_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
# what a resourceVersion is here: the apiserver's are decimal; anything else takes the route
_VERSION = re.compile(rb"[0-9]{1,64}")
_WAIT = re.compile(rb"[0-9]{1,2}")
# headers on which another middleware acts (CORS; the body limit): such requests go the long way
_HANDED_ON = frozenset({b"origin", b"content-length", b"transfer-encoding"})
_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Read:
    """One resource this path answers: its route's template, how a name must look, and how to
    read the app's cache of it and an entry's version and end."""

    template: str
    name_pattern: re.Pattern[str]
    name_max: int
    store: Callable[[Any], WatchedStore[Any]]  # the app's services -> the cache
    version: Callable[[Any], str]
    finished: Callable[[Any], bool]


class FastReads:
    """Answers cached reads (module docstring); ``reads`` by the path segment after the
    namespace (``restarts``, ``rollouts``). ``FastReadsApp`` asks it first."""

    def __init__(self, state: State, metrics: Metrics, reads: dict[str, Read]) -> None:
        self._state = state
        self._reads = reads
        self._counted = {
            segment: (
                metrics.requests.labels(read.template, "GET", "200"),
                metrics.latency.labels(read.template, "GET"),
            )
            for segment, read in reads.items()
        }

    async def answered(self, scope: Scope, send: Send) -> bool:
        """Whether the request was answered here (else nothing was sent)."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        start = time.perf_counter()
        try:
            hit = self._hit(scope)
        except Exception:  # a bug here must never cost the request: the route answers
            log.exception("fast read failed; handing the request to the routes")
            return False
        if hit is None:
            return False
        entry = hit.entry
        early: _EarlyAnswer | None = None
        if hit.wait > 0:  # as the route: a poll whose object is gone meanwhile gets its last state
            early = _EarlyAnswer(hit, send)
            entry = await long_poll(
                hit.store,
                entry,
                hit.namespace,
                hit.name,
                wait=hit.wait,
                since=hit.since,
                version=hit.read.version,
                finished=hit.read.finished,
                on_change=early.on_change,
            )
        counter, latency = self._counted[hit.segment]
        counter.inc()  # as MetricsMiddleware counts: when the response starts
        if early is not None and early.started_at is not None:
            latency.observe(early.started_at - start)
            await early.finish()
            return True
        latency.observe(time.perf_counter() - start)
        start_message, body_message = _answer(hit, entry)
        # start and body with nothing in between: one loop iteration, no await that yields
        await send(start_message)
        await send(body_message)
        return True

    def _hit(self, scope: Scope) -> _Hit | None:
        """What to answer from, or None to hand the request on."""
        path: str = scope["path"]
        parts = path.split("/")
        if (
            len(parts) != 6
            or parts[1] != "v1"
            or parts[2] != "namespaces"
            or scope.get("root_path")
        ):
            return None
        namespace, segment, name = parts[3], parts[4], parts[5]
        read = self._reads.get(segment)
        if read is None:
            return None
        if not (0 < len(namespace) <= 63 and _LABEL.fullmatch(namespace)):
            return None
        if not (0 < len(name) <= read.name_max and read.name_pattern.fullmatch(name)):
            return None
        query = _poll_query(scope["query_string"])
        if query is None:
            return None
        wait, since = query

        token = ""
        request_id: str | None = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                if token:
                    return None  # more than one: the route decides
                token = _bearer(value)
                if not token:
                    return None
            elif key == b"x-request-id":
                if request_id is None:
                    request_id = value.decode("latin-1")
            elif key in _HANDED_ON:
                return None

        services = self._state["services"]  # (not attribute access: ten times dearer on State)
        auth = self._state["auth"]
        if services is None or auth is None:
            return None
        settings = services.settings
        if settings.rate_limit_all_requests or not settings.serves(namespace):
            return None
        if auth.required and (not token or auth.recall(token, namespace, "get") is None):
            return None
        store = read.store(services)
        entry = store.get(namespace, name)
        if entry is None:
            return None
        wait = min(wait, settings.max_wait_seconds)
        return _Hit(segment, read, store, namespace, name, entry, wait, since, request_id)


def _answer(hit: _Hit, entry: Any) -> tuple[Message, Message]:
    """The response to ``hit`` from ``entry``: its start and its body."""
    body: bytes = entry.body
    # in the order the route's Response and the request-id middleware write them
    headers = [
        (b"content-length", str(len(body)).encode()),
        _JSON,
        (b"x-request-id", (sane_request_id(hit.request_id) or new_request_id()).encode()),
    ]
    stale = stale_headers(hit.store, hit.namespace)  # after the wait, as the route's
    if stale is not None:
        headers.insert(0, (b"warning", stale["Warning"].encode("latin-1")))
    return (
        {"type": "http.response.start", "status": 200, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class _EarlyAnswer:
    """A long poll answered from inside the store's wake (``on_change``, see
    ``service.http.sending``) when the change is one that ends it. The task still resumes
    after: it finishes a send that had to wait, if any, and counts the request. Any other
    wake (the change does not end the poll, the object is gone, the store drains) leaves
    everything to the task, which decides exactly as before."""

    __slots__ = ("hit", "rest", "send", "since", "started_at", "unsent")

    def __init__(self, hit: _Hit, send: Send) -> None:
        self.hit, self.send = hit, send
        self.since = hit.since if hit.since is not None else hit.read.version(hit.entry)
        self.started_at: float | None = None
        self.rest: Awaitable[None] | None = None  # a send that has to wait for the client
        self.unsent: Message | None = None  # the body, when the start had to wait

    def on_change(self) -> None:
        if self.started_at is not None:
            return
        hit = self.hit
        latest = hit.store.get(hit.namespace, hit.name)
        if latest is None or (
            not hit.read.finished(latest) and hit.read.version(latest) == self.since
        ):
            return  # not an answer (yet): the task goes on as before
        start_message, body_message = _answer(hit, latest)
        self.started_at = time.perf_counter()
        self.rest = send_now(self.send, start_message)
        if self.rest is None:
            self.rest = send_now(self.send, body_message)
        else:
            self.unsent = body_message

    async def finish(self) -> None:
        """What the wake could not send at once."""
        if self.rest is not None:
            await self.rest
        if self.unsent is not None:
            await self.send(self.unsent)


@dataclass(frozen=True, slots=True)
class _Hit:
    """A request this path answers: the cached entry found, and how long to wait for a
    change of it (0: answer at once)."""

    segment: str
    read: Read
    store: WatchedStore[Any]
    namespace: str
    name: str
    entry: Any
    wait: int
    since: str | None
    request_id: str | None


def _poll_query(query: bytes) -> tuple[int, str | None] | None:
    """``wait`` and ``resourceVersion`` when the query is nothing else and plain (digits, each
    at most once); None when the route should parse it."""
    wait, since = 0, None
    if not query:
        return wait, since
    seen: set[bytes] = set()
    for pair in query.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key in seen:
            return None
        seen.add(key)
        # beyond the routes' own bound the route answers 422
        if key == b"wait" and _WAIT.fullmatch(value) and int(value) <= MAX_WAIT_SECONDS:
            wait = int(value)
        elif key == b"resourceVersion" and _VERSION.fullmatch(value):
            since = value.decode()
        else:
            return None
    return wait, since


def _bearer(value: bytes) -> str:
    """The token the routes would take from this ``Authorization`` value (FastAPI's
    ``HTTPBearer``, then ``service.http.deps``'s checks), or "" where they would answer 401."""
    scheme, _, param = value.decode("latin-1").partition(" ")
    token = param.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return ""
    return token if token.isascii() and " " not in token else ""


RESTARTS = Read(
    template="/v1/namespaces/{namespace}/restarts/{name}",
    name_pattern=_SUBDOMAIN,
    name_max=253,
    store=lambda services: services.cache,
    version=lambda entry: entry.resource_version,
    finished=lambda entry: entry.finished,
)
ROLLOUTS = Read(
    template="/v1/namespaces/{namespace}/rollouts/{name}",
    name_pattern=_LABEL,
    name_max=63,
    store=lambda services: services.rollouts,
    version=lambda entry: entry.resource_version,
    finished=lambda entry: entry.rollout.finished,
)
READS = {"restarts": RESTARTS, "rollouts": ROLLOUTS}


class FastReadsApp(FastAPI):
    """The service's FastAPI app, asking ``fast_reads`` (when set) before its whole stack, even
    FastAPI's own outer middlewares: a hit costs none of them, anything else goes on as if
    this were not here."""

    fast_reads: FastReads | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_reads
        if fast is not None and await fast.answered(scope, send):
            return
        await super().__call__(scope, receive, send)
