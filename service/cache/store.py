"""The restart cache: the restarts (CRRs) by namespace and name, parsed and encoded once; reads
for the routes, the operations and the rollout controller; waiters that wake long polls and
event streams on a change; tombstones of deleted CRRs kept for the retention; and the health of
every watched scope (readiness, the stale warning). The machinery is ``keyed.KeyedStore``'s;
this adds what only restarts have (per-pod and per-rollout reads, the active cap's walk, the
restart metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from service.cache.entries import Entry, make_entry, tombstone_of
from service.cache.keyed import KeyedStore
from service.cache.sources import CrrSource
from service.config import Settings
from service.core.objects import KubeObject
from service.core.schemas import Restart
from service.kube.port import KubeAPI
from service.metrics import Metrics


class RestartCache(KeyedStore[Entry]):
    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(CrrSource(kube), settings, metrics, clock=clock)

    # ---------------------------------------------------------------- reads (event loop)

    def for_pod(self, namespace: str, pod: str) -> list[Entry]:
        """A pod's restarts, in no particular order: every create asks, so this filters
        first and never sorts the namespace (BENCHMARKS.md, "Tuning done from these
        figures")."""
        entries = self._by_ns.get(namespace, {})
        mine = (self._within_retention(e) for e in entries.values() if e.pod == pod)
        return [e for e in mine if e is not None]

    def active_for_pod(self, namespace: str, pod: str) -> list[Restart]:
        return [
            e.restart
            for e in self.for_pod(namespace, pod)
            if e.deleted_at is None and not e.finished
        ]

    def for_rollout(self, namespace: str, rollout: str) -> list[Entry]:
        """The restarts a rollout made (their CRRs carry its name), tombstones within the
        retention included, in no particular order."""
        entries = self._by_ns.get(namespace, {})
        mine = (self._within_retention(e) for e in entries.values() if e.rollout == rollout)
        return [e for e in mine if e is not None]

    def current(self, namespace: str) -> Iterator[Entry]:
        """The namespace's restarts that still exist, lazily and unsorted: the active cap
        asks on every create, and only when a cap is set does this walk the namespace."""
        return (e for e in self._by_ns.get(namespace, {}).values() if e.deleted_at is None)

    # ---------------------------------------------------------------- KeyedStore's hooks

    def _decode(self, obj: KubeObject, deleted_at: float | None) -> Entry:
        return make_entry(obj, deleted_at=deleted_at)

    def _tombstone_of(self, entry: Entry, now: float) -> Entry:
        return tombstone_of(entry, now)

    def _changed(self, previous: Entry | None, entry: Entry) -> None:
        if previous is not None and not previous.finished and entry.finished:
            restart = entry.restart  # read back once, when it finishes
            if restart.result is not None:
                self._metrics.restarts_finished.labels(
                    restart.result, restart.failureReason or ""
                ).inc()

    # the metrics restarts had before the other caches came (names kept for dashboards)

    def apply_event(self, kind: str, item: Entry) -> None:
        self._metrics.watch_events.labels(kind).inc()
        super().apply_event(kind, item)

    def _count_relist(self, scope: str, reason: str) -> None:
        self._metrics.watch_restarts.labels(scope, reason).inc()
        super()._count_relist(scope, reason)

    def _update_gauges(self) -> None:
        super()._update_gauges()
        self._metrics.cache_size.labels("live").set(self._live_count)
        self._metrics.cache_size.labels("tombstone").set(self._tombstone_count)
