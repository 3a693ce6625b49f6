"""A change feed of a keyed watch cache, per namespace: what the namespace watch streams
(``service.http.watch``) replay and follow, so that a stream costs the apiserver nothing.

The feed subscribes to the cache and numbers every change of a namespace's objects in the
order this process saw them; each change keeps the entry before and after it, so a stream can
tell, for its own filter, whether an object entered it (ADDED), changed in it (MODIFIED) or
left it (DELETED) without remembering what it sent. The last ``backlog`` changes of each
namespace are kept: a client that says which change it saw last (a token of this feed) gets
exactly the changes after it; an older token, or one from another process, cannot be resumed
and the client gets the current objects again.

Why sequence numbers and not resourceVersions: resourceVersions do not order what a client
may have missed. An object deleted while the cache's watch was down is found by the relist
with its last, older resourceVersion; objects created through this service are observed
before the watch delivers older events of others; tombstones are pruned without a trace. The
order in which this cache changed is the one order that can be replayed exactly.

Everything runs on the event loop, like the cache."""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from service.cache.keyed import KeyedEntry, KeyedStore
from service.cache.waiters import Waiters


class FeedEntry(KeyedEntry, Protocol):
    @property
    def body(self) -> bytes:
        """The object as the API returns it, encoded once."""
        ...


E = TypeVar("E", bound=FeedEntry)


@dataclass(frozen=True, slots=True)
class Change(Generic[E]):
    """One change of one object: ``previous`` is None when it did not exist before,
    ``current`` is None (or a tombstone) when it is gone now."""

    seq: int
    previous: E | None
    current: E | None

    @property
    def gone(self) -> bool:
        return self.current is None or self.current.deleted_at is not None

    @property
    def last_state(self) -> E:
        """What to show of the object: its current entry (a tombstone's last state for one
        deleted), else the one before."""
        entry = self.current if self.current is not None else self.previous
        assert entry is not None
        return entry


class NamespaceLog(Generic[E]):
    """The live objects of one namespace and its last changes, numbered from 1."""

    def __init__(self, backlog: int) -> None:
        self.id = secrets.token_hex(4)  # tokens of another log (process, namespace) never match
        self.seq = 0
        self.live: dict[str, E] = {}
        self._changes: deque[Change[E]] = deque(maxlen=backlog)
        self._waiters = Waiters()  # the namespace's streams; no task or timer per wait

    def record(self, previous: E | None, current: E | None) -> None:
        self.seq += 1
        self._changes.append(Change(self.seq, previous, current))
        self.wake()

    def wake(self) -> None:
        """Wake whoever waits for a change (a change, or the feed draining)."""
        self._waiters.wake(self.id)

    def snapshot(self) -> list[E]:
        """The live objects, by name."""
        return [self.live[name] for name in sorted(self.live)]

    def can_resume(self, seq: int) -> bool:
        """Whether every change after ``seq`` is still kept."""
        oldest = self._changes[0].seq if self._changes else self.seq + 1
        return oldest - 1 <= seq <= self.seq

    def after(self, seq: int) -> list[Change[E]] | None:
        """The changes after ``seq``, oldest first; None when some are no longer kept."""
        if not self.can_resume(seq):
            return None
        missing = self.seq - seq
        if missing == 0:
            return []
        start = len(self._changes) - missing
        return [self._changes[i] for i in range(start, len(self._changes))]

    async def wait(self, seq: int, timeout: float) -> bool:
        """Wait until there is a change after ``seq``; False when ``timeout`` passed first."""
        if self.seq > seq:
            return True
        return await self._waiters.wait(self.id, timeout)


class ChangeFeed(Generic[E]):
    """The change logs of every namespace of one cache (created when first needed)."""

    def __init__(self, store: KeyedStore[E], *, backlog: int) -> None:
        self._store = store
        self._backlog = backlog
        self._logs: dict[str, NamespaceLog[E]] = {}
        self._draining = False
        for entry in store.entries():
            if entry.deleted_at is None:
                namespace, name = entry.key
                self.log(namespace).live[name] = entry
        store.subscribe(self._on_change)

    @property
    def draining(self) -> bool:
        return self._draining

    def log(self, namespace: str) -> NamespaceLog[E]:
        log = self._logs.get(namespace)
        if log is None:
            log = self._logs[namespace] = NamespaceLog(self._backlog)
        return log

    def _on_change(self, namespace: str, name: str) -> None:
        log = self.log(namespace)
        current = self._store.get(namespace, name)
        previous = log.live.get(name)
        if current is None or current.deleted_at is not None:
            log.live.pop(name, None)
            if previous is None:
                return  # a tombstone of an object no stream had: nothing to tell
        else:
            if current is previous:
                return
            log.live[name] = current
        log.record(previous, current)

    def drain(self) -> None:
        """The process is shutting down: wake every stream so it ends (clients resume on
        another replica)."""
        self._draining = True
        for log in self._logs.values():
            log.wake()
