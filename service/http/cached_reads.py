"""Reads answered from a watch cache, the same way for restarts and rollouts: a long poll
(``?wait=N&resourceVersion=RV``), a page of a namespace's objects with a ``continue`` token,
and a stream of server-sent snapshots until the object finishes. The cache gives pre-encoded
bytes; nothing here asks the apiserver."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Protocol, TypeVar

from service.core.errors import RequestInvalid
from service.http.streams import EarlyEnd, FinalChunk


class CachedObject(Protocol):
    """What these reads need of a cache entry."""

    @property
    def body(self) -> bytes: ...


E = TypeVar("E", bound=CachedObject)
E_co = TypeVar("E_co", bound=CachedObject, covariant=True)


class WatchedStore(Protocol[E_co]):
    """What these reads need of a cache."""

    @property
    def draining(self) -> bool: ...

    def stale_since(self, namespace: str) -> datetime | None: ...

    def get(self, namespace: str, name: str) -> E_co | None: ...

    async def wait_change(
        self,
        namespace: str,
        name: str,
        timeout: float,
        on_change: Callable[[], None] | None = None,
    ) -> None: ...


Version = Callable[[E], str]  # an entry's resourceVersion
Finished = Callable[[E], bool]  # whether it will change no more


async def long_poll(
    store: WatchedStore[E],
    entry: E,
    namespace: str,
    name: str,
    *,
    wait: float,
    since: str | None,
    version: Version[E],
    finished: Finished[E],
    on_change: Callable[[], None] | None = None,
) -> E:
    """``entry``, or its next version when it changes from ``since`` (default: the current
    one) within ``wait`` seconds, unless it has finished or the process is shutting down.
    ``on_change`` is called in the store's wake on every change (``Waiters``)."""
    if wait <= 0 or finished(entry):
        return entry
    since = since if since is not None else version(entry)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not finished(entry) and version(entry) == since:
        remaining = deadline - loop.time()
        if store.draining or remaining <= 0:  # shutting down: answer now, the client polls again
            break
        await store.wait_change(namespace, name, remaining, on_change)
        latest = store.get(namespace, name)
        if latest is None:
            break
        entry = latest
    return entry


def warning_header(warnings: list[str]) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ", ".join(f"299 - {quoted(w)}" for w in warnings)


def stale_headers(store: WatchedStore[E], namespace: str) -> dict[str, str] | None:
    """A 299 warning on answers from the cache while its watch has lost the apiserver."""
    since = store.stale_since(namespace)
    if since is None:
        return None
    when = since.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"Warning": warning_header([f"stale: apiserver unreachable since {when}"])}


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    invalid = RequestInvalid("continue: not a token this service issued")
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise invalid from e
    if not name or encode_token(name) != token:
        raise invalid
    return name


def page(
    entries: Iterable[E],
    *,
    name: Callable[[E], str],
    keep: Callable[[E], bool],
    limit: int,
    continue_: str | None,
) -> bytes:
    """``{"items": [...], "continue": token|null}`` of the entries (sorted by name) that
    ``keep`` keeps, after the continue token's name, at most ``limit``."""
    after = decode_token(continue_) if continue_ else None
    items: list[bytes] = []
    token: str | None = None
    last_name = ""
    for entry in entries:
        if after is not None and name(entry) <= after:
            continue
        if not keep(entry):
            continue
        if len(items) == limit:
            token = encode_token(last_name)
            break
        items.append(entry.body)
        last_name = name(entry)
    return b'{"items":[' + b",".join(items) + b'],"continue":' + json.dumps(token).encode() + b"}"


def sse_event(event: str, version: str, body: bytes) -> bytes:
    return b"event: " + event.encode() + b"\nid: " + version.encode() + b"\ndata: " + body + b"\n\n"


# Every follower of an object sends the same snapshot: encode it once. The arguments are the
# same objects for all of them (the cached entry's body), so a hit costs a hash lookup.
@lru_cache(maxsize=1024)
def _snapshot_event(event: str, version: str, body: bytes, last: bool) -> bytes:
    frame = sse_event(event, version, body)
    return FinalChunk(frame) if last else frame


async def snapshots(
    store: WatchedStore[E],
    first: E,
    namespace: str,
    name: str,
    *,
    event: str,
    last_event_id: str | None,
    heartbeat: float,
    version: Version[E],
    finished: Finished[E],
    early_end: EarlyEnd | None = None,
) -> AsyncIterator[bytes]:
    """Server-sent events: a snapshot on every change (none for the version the client says
    it has), comment heartbeats in between; the stream ends after the finished snapshot, or
    when this replica drains (the client reconnects with Last-Event-ID, to another one). The
    last snapshot is a ``FinalChunk``: it goes out with the end of the response, and, with
    ``early_end`` (the response's), from the store's wake when the object finishes."""
    entry = first
    sent = last_event_id

    def on_change() -> None:  # in the store's wake: the finished snapshot, sent at once
        assert early_end is not None
        latest = store.get(namespace, name)
        if latest is not None and finished(latest) and version(latest) != sent:
            early_end.end_now(_snapshot_event(event, version(latest), latest.body, True))

    yield b"retry: 3000\n\n"
    while True:
        last = finished(entry) or store.draining
        if version(entry) != sent:
            yield _snapshot_event(event, version(entry), entry.body, last)
            sent = version(entry)
        if last:
            return
        await store.wait_change(
            namespace, name, heartbeat, on_change if early_end is not None else None
        )
        if early_end is not None and early_end.sent:
            return
        latest = store.get(namespace, name)
        if latest is None:
            return
        if latest is entry and not store.draining:
            yield b": heartbeat\n\n"
        entry = latest
