"""The store: the restarts the cache holds, by namespace and name; reads for the routes and
the operations; waiters that wake long polls and event streams on a change; tombstones of
deleted CRRs kept for the retention; and the health of every watched scope (readiness, the
stale warning). It owns its reflector, which feeds it from the apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from service.cache.entries import Entry, Key, make_entry, tombstone_of
from service.cache.reflector import Reflector, WatchScope
from service.config import Settings
from service.core.objects import KubeObject
from service.core.reading import is_newer
from service.core.schemas import Restart
from service.kube.port import KubeAPI
from service.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _ScopeState:
    synced: bool = False  # the first list has landed
    healthy: bool = False  # the last list succeeded and the watch has not broken since
    error: str | None = None
    unhealthy_since: datetime | None = None  # wall clock of the first failure since healthy


class RestartCache:
    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        scopes: list[WatchScope] = [None] if settings.all_namespaces else list(settings.namespaces)
        self._by_ns: dict[str, dict[str, Entry]] = {}
        self._waiters: dict[Key, asyncio.Event] = {}
        self._state: dict[WatchScope, _ScopeState] = {s: _ScopeState() for s in scopes}
        self._reflector = Reflector(kube, settings, metrics, self, scopes, clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._draining = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._reflector.start(self._loop)
        self._pruner = asyncio.create_task(self._prune_forever(), name="crr-cache-pruner")

    async def stop(self) -> None:
        self._reflector.stop()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self._reflector.join()
        for event in self._waiters.values():
            event.set()
        self._waiters.clear()

    def drain(self) -> None:
        """The process is shutting down: wake every long poll and event stream now (they
        answer what they have and end) and stop making new ones wait, so in-flight requests
        do not hold up a graceful exit. Not ready from now on."""
        self._draining = True
        for event in self._waiters.values():
            event.set()
        self._waiters.clear()
        self._update_gauges()

    def drain_threadsafe(self) -> None:
        """:meth:`drain` from a signal handler or another thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self.drain)

    @property
    def draining(self) -> bool:
        return self._draining

    # ---------------------------------------------------------------- readiness

    @property
    def ready(self) -> bool:
        return not self._draining and all(s.synced and s.healthy for s in self._state.values())

    def stale_since(self, namespace: str) -> datetime | None:
        """When the watch serving ``namespace`` lost the apiserver (None while it is live):
        the cache still answers, but changes since then are not in it yet."""
        state = self._state.get(None) or self._state.get(namespace)
        if state is None or not state.synced or state.healthy:
            return None
        return state.unhealthy_since

    def scope_status(self) -> dict[str, dict[str, object]]:
        return {
            (scope or "*"): {"synced": s.synced, "healthy": s.healthy, "error": s.error}
            for scope, s in self._state.items()
        }

    def synced(self, namespace: str) -> bool:
        state = self._state.get(None) or self._state.get(namespace)
        return state is not None and state.synced

    # ---------------------------------------------------------------- reads (event loop)

    def _live(self, entry: Entry | None) -> Entry | None:
        if entry is None or entry.deleted_at is None:
            return entry
        if self._clock() - entry.deleted_at > self._settings.retention_seconds:
            return None
        return entry

    def get(self, namespace: str, name: str) -> Entry | None:
        return self._live(self._by_ns.get(namespace, {}).get(name))

    def in_namespace(self, namespace: str) -> list[Entry]:
        """Restarts of a namespace sorted by name (tombstones within retention included)."""
        entries = self._by_ns.get(namespace, {})
        live = (self._live(entries[name]) for name in sorted(entries))
        return [e for e in live if e is not None]

    def for_pod(self, namespace: str, pod: str) -> list[Entry]:
        """A pod's restarts, in no particular order: every create asks, so this filters
        first and never sorts the namespace (BENCHMARKS.md, "Tuning done from these
        figures")."""
        entries = self._by_ns.get(namespace, {})
        mine = (self._live(e) for e in entries.values() if e.restart.pod == pod)
        return [e for e in mine if e is not None]

    def active_for_pod(self, namespace: str, pod: str) -> list[Restart]:
        return [
            e.restart
            for e in self.for_pod(namespace, pod)
            if e.deleted_at is None and not e.restart.finished
        ]

    def current(self, namespace: str) -> Iterator[Restart]:
        """The namespace's restarts that still exist, lazily and unsorted: the active cap
        asks on every create, and only when a cap is set does this walk the namespace."""
        return (e.restart for e in self._by_ns.get(namespace, {}).values() if e.deleted_at is None)

    def find_idempotent(self, namespace: str, label: str) -> Entry | None:
        """The restart made for this Idempotency-Key label (the first by name if several
        share it); a walk of the namespace, never a sort."""
        entries = self._by_ns.get(namespace, {})
        mine = (self._live(e) for e in entries.values() if e.idempotency == label)
        return min((e for e in mine if e is not None), key=lambda e: e.restart.name, default=None)

    async def wait_change(self, namespace: str, name: str, timeout: float) -> None:
        """Return when the restart changes (or ``timeout`` passes)."""
        if self._draining:
            return
        key = (namespace, name)
        event = self._waiters.get(key)
        if event is None:
            event = self._waiters[key] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    # ---------------------------------------------------------------- writes (event loop)

    def observe(self, obj: KubeObject) -> Entry:
        """Take an object we just got from the apiserver (after a create) unless the cache
        already has the same or a newer version. Returns what the cache now holds."""
        entry = make_entry(obj)
        current = self._by_ns.get(entry.restart.namespace, {}).get(entry.restart.name)
        if current is None or is_newer(
            entry.restart.resourceVersion, current.restart.resourceVersion
        ):
            self._put(entry)
            return entry
        return current

    def observe_deleted(self, obj: KubeObject) -> Entry:
        """Take the object a DELETE answered with: the restart is over from now on, unless
        the watch already delivered the deletion."""
        namespace = str((obj.get("metadata") or {}).get("namespace", ""))
        name = str((obj.get("metadata") or {}).get("name", ""))
        current = self._by_ns.get(namespace, {}).get(name)
        if current is not None and current.deleted_at is not None:
            return current
        entry = make_entry(obj, deleted_at=self._clock())
        self._put(entry)
        self._update_gauges()
        return entry

    def tombstone(self, namespace: str, name: str) -> Entry | None:
        """Mark a restart deleted (a DELETE answered with a Status, not the object)."""
        current = self._by_ns.get(namespace, {}).get(name)
        if current is None or current.deleted_at is not None:
            return current
        entry = tombstone_of(current, self._clock())
        self._put(entry)
        self._update_gauges()
        return entry

    def _put(self, entry: Entry) -> None:
        namespace, name = entry.key
        entries = self._by_ns.setdefault(namespace, {})
        previous = entries.get(name)
        entries[name] = entry
        if (
            previous is not None
            and not previous.restart.finished
            and entry.restart.finished
            and entry.restart.result is not None
        ):
            self._metrics.restarts_finished.labels(
                entry.restart.result, entry.restart.failureReason or ""
            ).inc()
        event = self._waiters.pop((namespace, name), None)
        if event is not None:
            event.set()

    def apply_event(self, kind: str, entry: Entry) -> None:
        self._metrics.watch_events.labels(kind).inc()
        namespace, name = entry.key
        current = self._by_ns.get(namespace, {}).get(name)
        if kind == "DELETED":
            if (
                current is None
                or current.deleted_at is None
                or is_newer(entry.restart.resourceVersion, current.restart.resourceVersion)
            ):
                self._put(entry)
        elif current is None or is_newer(
            entry.restart.resourceVersion, current.restart.resourceVersion
        ):
            self._put(entry)
        self._update_gauges()

    def apply_list(self, scope: WatchScope, entries: list[Entry], now: float) -> None:
        seen: set[Key] = set()
        for entry in entries:
            seen.add(entry.key)
            current = self._by_ns.get(entry.key[0], {}).get(entry.key[1])
            if (
                current is None
                or current.deleted_at is not None
                or is_newer(entry.restart.resourceVersion, current.restart.resourceVersion)
            ):
                self._put(entry)
        # whatever the cache holds in this scope but the list no longer has was deleted
        # while we were not watching: keep its last state as a tombstone
        namespaces = [scope] if scope is not None else list(self._by_ns)
        for namespace in namespaces:
            for name, current in list(self._by_ns.get(namespace, {}).items()):
                if current.deleted_at is None and (namespace, name) not in seen:
                    self._put(tombstone_of(current, now))
        state = self._state[scope]
        state.synced = True
        state.healthy = True
        state.error = None
        state.unhealthy_since = None
        self._update_gauges()

    def set_unhealthy(self, scope: WatchScope, error: str, since: datetime) -> None:
        state = self._state[scope]
        if state.healthy or state.unhealthy_since is None:
            state.unhealthy_since = since
        state.healthy = False
        state.error = error
        self._update_gauges()

    def _update_gauges(self) -> None:
        live = tombstones = 0
        for entries in self._by_ns.values():
            for entry in entries.values():
                if entry.deleted_at is None:
                    live += 1
                else:
                    tombstones += 1
        self._metrics.cache_size.labels("live").set(live)
        self._metrics.cache_size.labels("tombstone").set(tombstones)
        self._metrics.cache_ready.set(1 if self.ready else 0)

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

    # ---------------------------------------------------------------- test helpers

    def entries(self) -> Iterable[Entry]:
        for entries in self._by_ns.values():
            yield from entries.values()
