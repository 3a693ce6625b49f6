"""What every watch cache shares: one reflector feeding it, the health of its scopes
(readiness, the stale warning), draining at shutdown, its metrics, and callbacks for the
code that follows changes (the rollout controller). Subclasses hold the objects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from service.cache.reflector import Decode, Reflector, WatchSource
from service.cache.scopes import ScopeHealth, WatchScope, served_scopes
from service.config import Settings
from service.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


def notify(callbacks: Sequence[Callable[..., None]], *args: Any) -> None:
    """Call every subscriber; one that raises is logged and never breaks the cache."""
    for callback in callbacks:
        try:
            callback(*args)
        except Exception:
            log.exception("a watch cache subscriber failed on %s", args)


class WatchedStore(Generic[T]):
    """A cache fed by one list+watch per served scope. Everything but the reflector's
    threads runs on the event loop: no locks on the read path."""

    def __init__(
        self,
        source: WatchSource,
        decode: Decode[T],
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = source.name
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._health = ScopeHealth(served_scopes(settings.all_namespaces, settings.namespaces))
        self._reflector = Reflector(
            source,
            decode,
            self,
            self._health.scopes,
            settings,
            clock=clock,
            on_relist=self._count_relist,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._reflector.start(self._loop)
        self._update_gauges()

    async def stop(self) -> None:
        self._reflector.stop()
        await self._reflector.join()

    def drain(self) -> None:
        """The process is shutting down: not ready from now on (subclasses also wake
        whoever waits on them)."""
        self._draining = True
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
        return not self._draining and self._health.ready

    def synced(self, namespace: str) -> bool:
        """The first list of the scope serving ``namespace`` has landed."""
        return self._health.synced(namespace)

    def stale_since(self, namespace: str) -> datetime | None:
        """When the watch serving ``namespace`` lost the apiserver (None while it is live):
        the cache still answers, but changes since then are not in it yet."""
        return self._health.stale_since(namespace)

    def scope_status(self) -> dict[str, dict[str, object]]:
        return self._health.status()

    # ---------------------------------------------------------------- the reflector's sink

    def apply_list(self, scope: WatchScope, items: list[T], now: float) -> None:
        self._apply_list(scope, items, now)
        self._health.listed(scope)
        self._update_gauges()

    def apply_event(self, kind: str, item: T) -> None:
        self._metrics.watch_cache_events.labels(self.name, kind).inc()
        self._apply_event(kind, item)
        self._update_gauges()

    def set_unhealthy(self, scope: WatchScope, error: str, since: datetime) -> None:
        self._health.failed(scope, error, since)
        self._update_gauges()

    def _apply_list(self, scope: WatchScope, items: list[T], now: float) -> None:
        raise NotImplementedError

    def _apply_event(self, kind: str, item: T) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- metrics

    def _count_relist(self, scope: str, reason: str) -> None:
        """From the reflector's threads (counters are thread-safe)."""
        self._metrics.watch_cache_relists.labels(self.name, scope, reason).inc()

    def _sizes(self) -> dict[str, int]:
        """Objects held, by state (``live``, ``tombstone``)."""
        raise NotImplementedError

    def _update_gauges(self) -> None:
        for state, count in self._sizes().items():
            self._metrics.watch_cache_objects.labels(self.name, state).set(count)
        self._metrics.watch_cache_ready.labels(self.name).set(1 if self.ready else 0)
