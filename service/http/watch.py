"""Namespace watch streams: ``GET /v1/namespaces/{ns}/restarts?watch=true`` and
``.../rollouts?watch=true`` answer server-sent events from the caches' change feeds
(``service.cache.feed``), never asking the apiserver.

The stream, for the objects the list's filters keep:

* a full listing: ``event: RESET`` (``id:`` empty: a client that loses the stream during the
  listing reconnects for a new one), ``event: ADDED`` for each current object, then
  ``event: BOOKMARK`` with ``data: {"initialEventsEnd":true}`` and the ``id:`` to resume from;
* then one event per change: ``ADDED`` (the object entered the filter: created, or it now
  matches), ``MODIFIED``, ``DELETED`` (deleted, or it no longer matches; ``data:`` its last
  state), each with ``data:`` the object's JSON as the API returns it and ``id:`` the token to
  resume after it;
* a comment heartbeat every ``sse_heartbeat_seconds`` of silence, or a ``BOOKMARK`` with a newer
  ``id:`` when other objects of the namespace changed meanwhile (so a filtered stream's token
  stays fresh);
* the end of the stream after ``timeoutSeconds`` (at most ``watch_max_seconds``), as a
  Kubernetes watch ends: the client reconnects with its ``Last-Event-ID`` and loses nothing,
  and long-lived clients spread over the replicas again.

A client that reconnects with ``Last-Event-ID`` gets exactly the changes after that event;
when the token is too old (more than ``watch_backlog`` changes ago) or from another replica or
process, it gets a full listing (``RESET`` first). Authorization is the SubjectAccessReview verb
``watch`` (Kubernetes' own verb for ``?watch=true``), a plain list needs ``list``; each caller
may hold ``watch_streams_per_caller`` streams at once on a replica (429 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request
from starlette.types import Receive, Scope, Send

from service.cache.entries import Entry
from service.cache.feed import Change, ChangeFeed, FeedEntry, NamespaceLog
from service.cache.rollouts import RolloutCache, RolloutEntry
from service.cache.store import RestartCache
from service.config import Settings
from service.core.errors import CacheNotReady, TooManyStreams
from service.http.deps import AuthorizedRequest, BearerDep, NamespacePath, authorized
from service.http.streams import EventStreamResponse

E = TypeVar("E", bound=FeedEntry)
Keep = Callable[[E], bool]
Headers = dict[str, str] | None

HEARTBEAT = b": heartbeat\n\n"
RETRY = b"retry: 3000\n\n"
RESET = b"event: RESET\nid:\ndata: {}\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

WatchQuery = Annotated[
    bool,
    Query(
        description="answer a stream of server-sent events instead of a page: the current "
        "objects (ADDED), then one event per change (ADDED, MODIFIED, DELETED); resumable "
        "with Last-Event-ID. Filters apply; limit and continue do not",
    ),
]
TimeoutQuery = Annotated[
    int | None,
    Query(
        alias="timeoutSeconds",
        ge=1,
        description="watch: end the stream after this many seconds (at most the service's "
        "watch_max_seconds, its default); reconnect with Last-Event-ID to go on",
    ),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=64,
        description="watch: resume after this event (its id); a token too old gets a full "
        "listing again",
    ),
]


# ---------------------------------------------------------------- the events


def _frame(event: str, event_id: str, body: bytes) -> bytes:
    return (
        b"event: " + event.encode() + b"\nid: " + event_id.encode() + b"\ndata: " + body + b"\n\n"
    )


def token(log: NamespaceLog[E], seq: int) -> str:
    return f"{log.id}.{seq}"


def resume_point(log: NamespaceLog[E], last_event_id: str | None) -> int | None:
    """The change to resume after, or None when ``last_event_id`` cannot be resumed here."""
    if not last_event_id:
        return None
    log_id, _, seq_text = last_event_id.strip().rpartition(".")
    if log_id != log.id or not seq_text.isdigit():
        return None
    seq = int(seq_text)
    return seq if log.can_resume(seq) else None


def listing(log: NamespaceLog[E], keep: Keep[E]) -> tuple[int, bytes]:
    """Every live object ``keep`` keeps, framed, and the change it is current at."""
    added = b"".join(b"event: ADDED\ndata: " + e.body + b"\n\n" for e in log.snapshot() if keep(e))
    end = _frame("BOOKMARK", token(log, log.seq), b'{"initialEventsEnd":true}')
    return log.seq, RESET + added + end


def change_event(change: Change[E], keep: Keep[E]) -> tuple[str, bytes] | None:
    """How ``change`` looks through the filter: entered, changed in it, left it, or unseen."""
    was = change.previous is not None and keep(change.previous)
    now = change.current is not None and not change.gone and keep(change.current)
    if now:
        assert change.current is not None
        return ("MODIFIED" if was else "ADDED"), change.current.body
    if was:
        return "DELETED", change.last_state.body
    return None


async def watch_events(
    feed: ChangeFeed[E],
    namespace: str,
    keep: Keep[E],
    *,
    last_event_id: str | None,
    heartbeat: float,
    lifetime: float,
) -> AsyncIterator[bytes]:
    log = feed.log(namespace)
    clock = asyncio.get_running_loop().time
    deadline = clock() + lifetime
    yield RETRY
    cursor = resume_point(log, last_event_id)
    if cursor is None:
        cursor, frames = listing(log, keep)
        yield frames
    sent = cursor
    while not feed.draining and clock() < deadline:
        changes = log.after(cursor)
        if changes is None:  # the stream fell further behind than the backlog
            cursor, frames = listing(log, keep)
            sent = cursor
            yield frames
            continue
        if not changes:
            if not await log.wait(cursor, max(0.0, min(heartbeat, deadline - clock()))):
                if clock() >= deadline:
                    break
                yield HEARTBEAT if sent == cursor else _frame("BOOKMARK", token(log, cursor), b"{}")
                sent = cursor
            continue
        for change in changes:
            cursor = change.seq
            event = change_event(change, keep)
            if event is not None:
                yield _frame(event[0], token(log, cursor), event[1])
                sent = cursor
    if sent != cursor:  # the client resumes from the last change, even one it did not see
        yield _frame("BOOKMARK", token(log, cursor), b"{}")


# ---------------------------------------------------------------- streams per caller


class StreamSlots:
    """How many streams each caller holds open, bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, caller: str) -> Callable[[], None]:
        """One more stream for ``caller`` (else ``TooManyStreams``); returns its release."""
        held = self._open.get(caller, 0)
        if held >= self.limit:
            raise TooManyStreams(
                f"{caller} already holds {held} watch streams on this replica (at most "
                f"{self.limit}); close one first",
                retry_after=5,
            )
        self._open[caller] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open.get(caller, 1) - 1
            if left > 0:
                self._open[caller] = left
            else:
                self._open.pop(caller, None)

        return release

    def held(self, caller: str) -> int:
        return self._open.get(caller, 0)


class WatchResponse(EventStreamResponse):
    """A stream that gives its caller's slot back however it ends (finished, client gone,
    never started)."""

    def __init__(
        self, content: AsyncIterator[bytes], release: Callable[[], None], headers: dict[str, str]
    ) -> None:
        super().__init__(
            content, media_type="text/event-stream", headers={**STREAM_HEADERS, **headers}
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


# ---------------------------------------------------------------- wiring


class NamespaceWatches:
    """What the namespace watch streams need, built by the app's lifespan once the caches
    exist: a change feed of the restart and of the rollout cache, and the per-caller slots."""

    def __init__(self, restarts: RestartCache, rollouts: RolloutCache, settings: Settings) -> None:
        self.restarts: ChangeFeed[Entry] = ChangeFeed(restarts, backlog=settings.watch_backlog)
        self.rollouts: ChangeFeed[RolloutEntry] = ChangeFeed(
            rollouts, backlog=settings.watch_backlog
        )
        self.slots = StreamSlots(settings.watch_streams_per_caller)
        self.heartbeat = settings.sse_heartbeat_seconds
        self.max_seconds = settings.watch_max_seconds
        self._loop = asyncio.get_running_loop()

    def drain(self) -> None:
        self.restarts.drain()
        self.rollouts.drain()

    def drain_threadsafe(self) -> None:
        """:meth:`drain` from a signal handler or another thread."""
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(self.drain)


@dataclass(frozen=True, slots=True)
class ListOrWatch:
    """A list route's authorized request, and whether it asked for a watch stream."""

    authorized: AuthorizedRequest
    watch: bool
    watches: NamespaceWatches | None
    timeout_seconds: int | None = None

    def restarts(
        self, namespace: str, keep: Keep[Entry], *, last_event_id: str | None, headers: Headers
    ) -> WatchResponse:
        return self._stream(lambda w: w.restarts, namespace, keep, last_event_id, headers)

    def rollouts(
        self,
        namespace: str,
        keep: Keep[RolloutEntry],
        *,
        last_event_id: str | None,
        headers: Headers,
    ) -> WatchResponse:
        return self._stream(lambda w: w.rollouts, namespace, keep, last_event_id, headers)

    def _stream(
        self,
        feed_of: Callable[[NamespaceWatches], ChangeFeed[E]],
        namespace: str,
        keep: Keep[E],
        last_event_id: str | None,
        headers: Headers,
    ) -> WatchResponse:
        watches = self.watches
        if watches is None:
            raise CacheNotReady("the service is starting")
        events = watch_events(
            feed_of(watches),
            namespace,
            keep,
            last_event_id=last_event_id,
            heartbeat=watches.heartbeat,
            lifetime=min(self.timeout_seconds or watches.max_seconds, watches.max_seconds),
        )
        release = watches.slots.take(self.authorized.caller.name)
        return WatchResponse(events, release, headers or {})


_authorize_list = authorized("list").dependency
_authorize_watch = authorized("watch").dependency


async def authorize_list_or_watch(
    request: Request,
    namespace: NamespacePath,
    credentials: BearerDep,
    watch: WatchQuery = False,
    timeout_seconds: TimeoutQuery = None,
) -> ListOrWatch:
    """A list needs "list" on CRRs in the namespace; a watch stream needs "watch"."""
    check = _authorize_watch if watch else _authorize_list
    authorized_request: AuthorizedRequest = await check(request, namespace, credentials)
    watches: NamespaceWatches | None = getattr(request.app.state, "namespace_watches", None)
    return ListOrWatch(authorized_request, watch, watches, timeout_seconds)


AuthorizedListOrWatch = Annotated[ListOrWatch, Depends(authorize_list_or_watch)]
