"""A watch cache of entries by namespace and name that outlive their object for a while: what
the restart and the rollout caches share. Entries are parsed and encoded once (by the
subclass's ``decode``); a newer resourceVersion always wins; a deleted object leaves a
tombstone, served for the retention and then pruned; waiters wake long polls and event streams
on a change; subscribers hear of every change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from service.cache.reflector import WatchSource
from service.cache.scopes import WatchScope
from service.cache.waiters import Waiters
from service.cache.watched import WatchedStore, notify
from service.config import Settings
from service.core.objects import KubeObject, metadata
from service.core.reading import is_newer
from service.metrics import Metrics

Key = tuple[str, str]  # (namespace, name)


class KeyedEntry(Protocol):
    @property
    def key(self) -> Key: ...

    @property
    def resource_version(self) -> str: ...

    @property
    def deleted_at(self) -> float | None:
        """Monotonic time the object was seen deleted (a tombstone), else None."""
        ...

    @property
    def idempotency(self) -> str | None:
        """The Idempotency-Key label it was made with."""
        ...


E = TypeVar("E", bound=KeyedEntry)


class KeyedStore(WatchedStore[E]):
    def __init__(
        self,
        source: WatchSource,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(source, self._decode, settings, metrics, clock=clock)
        self._by_ns: dict[str, dict[str, E]] = {}
        self._waiters = Waiters()
        self._subscribers: list[Callable[[str, str], None]] = []
        self._pruner: asyncio.Task[None] | None = None
        self._live_count = 0
        self._tombstone_count = 0

    # ---------------------------------------------------------------- what subclasses say

    def _decode(self, obj: KubeObject, deleted_at: float | None) -> E:
        """The entry of an object (deleted at ``deleted_at``, or live)."""
        raise NotImplementedError

    def _tombstone_of(self, entry: E, now: float) -> E:
        """The entry of an object deleted with no final state to read (a relist no longer
        has it, or a DELETE answered a ``Status``): its last state, marked deleted."""
        raise NotImplementedError

    def _changed(self, previous: E | None, entry: E) -> None:
        """Called after ``entry`` replaced ``previous`` (metrics of the subclass)."""

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await super().start()
        self._pruner = asyncio.create_task(self._prune_forever(), name=f"{self.name}-pruner")

    async def stop(self) -> None:
        self._reflector.stop()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self._reflector.join()
        self._wake_all()

    def drain(self) -> None:
        """The process is shutting down: wake every long poll and event stream now (they
        answer what they have and end) and stop making new ones wait, so in-flight requests
        do not hold up a graceful exit. Not ready from now on."""
        self._draining = True
        self._wake_all()
        self._update_gauges()

    def _wake_all(self) -> None:
        self._waiters.wake_all()

    # ---------------------------------------------------------------- reads (event loop)

    def _within_retention(self, entry: E | None) -> E | None:
        if entry is None or entry.deleted_at is None:
            return entry
        if self._clock() - entry.deleted_at > self._settings.retention_seconds:
            return None
        return entry

    def get(self, namespace: str, name: str) -> E | None:
        return self._within_retention(self._by_ns.get(namespace, {}).get(name))

    def in_namespace(self, namespace: str) -> list[E]:
        """A namespace's entries sorted by name (tombstones within retention included)."""
        entries = self._by_ns.get(namespace, {})
        kept = (self._within_retention(entries[name]) for name in sorted(entries))
        return [e for e in kept if e is not None]

    def find_idempotent(self, namespace: str, label: str) -> E | None:
        """The entry made for this Idempotency-Key label (the first by name if several
        share it); a walk of the namespace, never a sort."""
        entries = self._by_ns.get(namespace, {})
        mine = (self._within_retention(e) for e in entries.values() if e.idempotency == label)
        return min((e for e in mine if e is not None), key=lambda e: e.key[1], default=None)

    async def wait_change(
        self,
        namespace: str,
        name: str,
        timeout: float,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Return when the entry changes (or ``timeout`` passes, or the cache drains)."""
        if self._draining:
            return
        # no timer or task per wait: a change wakes every follower of the object at once
        # (ten thousand of them in the bench), see service.cache.waiters
        await self._waiters.wait((namespace, name), timeout, on_change)

    def subscribe(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(namespace, name)`` on the event loop after every change of an
        entry (watch events, relists, observes, tombstones; not prunes). It must not block."""
        self._subscribers.append(callback)

    def entries(self) -> Iterable[E]:
        """Every entry held, tombstones included (for tests and metrics)."""
        for entries in self._by_ns.values():
            yield from entries.values()

    # ---------------------------------------------------------------- writes (event loop)

    def observe(self, obj: KubeObject) -> E:
        """Take an object we just got from the apiserver (after a create or a write) unless
        the cache already has the same or a newer version. Returns what the cache holds."""
        entry = self._decode(obj, None)
        namespace, name = entry.key
        current = self._by_ns.get(namespace, {}).get(name)
        if current is None or is_newer(entry.resource_version, current.resource_version):
            self._put(entry)
            self._update_gauges()
            return entry
        return current

    def observe_deleted(self, obj: KubeObject) -> E:
        """Take the object a DELETE answered with: the entry is a tombstone from now on,
        unless the watch already delivered the deletion."""
        meta = metadata(obj)
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        current = self._by_ns.get(namespace, {}).get(name)
        if current is not None and current.deleted_at is not None:
            return current
        entry = self._decode(obj, self._clock())
        self._put(entry)
        self._update_gauges()
        return entry

    def tombstone(self, namespace: str, name: str) -> E | None:
        """Mark an entry deleted (a DELETE answered with a Status, not the object)."""
        current = self._by_ns.get(namespace, {}).get(name)
        if current is None or current.deleted_at is not None:
            return current
        entry = self._tombstone_of(current, self._clock())
        self._put(entry)
        self._update_gauges()
        return entry

    def _put(self, entry: E) -> None:
        namespace, name = entry.key
        entries = self._by_ns.setdefault(namespace, {})
        previous = entries.get(name)
        entries[name] = entry
        if previous is not None:
            self._count(previous, -1)
        self._count(entry, +1)
        self._changed(previous, entry)
        self._waiters.wake((namespace, name))
        notify(self._subscribers, namespace, name)

    def _count(self, entry: E, delta: int) -> None:
        if entry.deleted_at is None:
            self._live_count += delta
        else:
            self._tombstone_count += delta

    def _apply_event(self, kind: str, item: E) -> None:
        namespace, name = item.key
        current = self._by_ns.get(namespace, {}).get(name)
        if kind == "DELETED":
            if (
                current is None
                or current.deleted_at is None
                or is_newer(item.resource_version, current.resource_version)
            ):
                self._put(item)
        elif current is None or is_newer(item.resource_version, current.resource_version):
            self._put(item)

    def _apply_list(self, scope: WatchScope, items: list[E], now: float) -> None:
        seen: set[Key] = set()
        for entry in items:
            seen.add(entry.key)
            current = self._by_ns.get(entry.key[0], {}).get(entry.key[1])
            if (
                current is None
                or current.deleted_at is not None
                or is_newer(entry.resource_version, current.resource_version)
            ):
                self._put(entry)
        # whatever the cache holds in this scope but the list no longer has was deleted
        # while we were not watching: keep its last state as a tombstone
        namespaces = [scope] if scope is not None else list(self._by_ns)
        for namespace in namespaces:
            for name, current in list(self._by_ns.get(namespace, {}).items()):
                if current.deleted_at is None and (namespace, name) not in seen:
                    self._put(self._tombstone_of(current, now))

    def prune(self) -> int:
        """Drop tombstones older than the retention. Returns how many were dropped."""
        now = self._clock()
        dropped = 0
        for namespace, entries in list(self._by_ns.items()):
            for name, entry in list(entries.items()):
                if (
                    entry.deleted_at is not None
                    and now - entry.deleted_at > self._settings.retention_seconds
                ):
                    del entries[name]
                    self._count(entry, -1)
                    dropped += 1
            if not entries:
                del self._by_ns[namespace]
        if dropped:
            self._update_gauges()
        return dropped

    async def _prune_forever(self) -> None:
        interval = max(0.5, min(30.0, self._settings.retention_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            self.prune()

    def _sizes(self) -> dict[str, int]:
        return {"live": self._live_count, "tombstone": self._tombstone_count}
