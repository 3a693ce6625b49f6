"""Every watch cache of the service, built, started, drained and stopped together, and ready
together: restarts (CRRs), pods, rollouts and disruption budgets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from service.cache.budgets import BudgetCache
from service.cache.pods import PodCache
from service.cache.rollouts import RolloutCache
from service.cache.store import RestartCache
from service.config import Settings
from service.kube.port import KubeAPI
from service.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Caches:
    restarts: RestartCache
    pods: PodCache
    rollouts: RolloutCache
    budgets: BudgetCache

    @classmethod
    def build(cls, kube: KubeAPI, settings: Settings, metrics: Metrics) -> Caches:
        caches = cls(
            restarts=RestartCache(kube, settings, metrics),
            pods=PodCache(kube, settings, metrics),
            rollouts=RolloutCache(kube, settings, metrics),
            budgets=BudgetCache(kube, settings, metrics),
        )
        # read at scrape time, so it can never disagree with /readyz
        metrics.cache_ready.set_function(lambda: 1.0 if caches.ready else 0.0)
        return caches

    @property
    def _all(self) -> tuple[RestartCache | PodCache | RolloutCache | BudgetCache, ...]:
        return (self.restarts, self.pods, self.rollouts, self.budgets)

    async def start(self) -> None:
        for cache in self._all:
            await cache.start()

    async def stop(self) -> None:
        await asyncio.gather(*(cache.stop() for cache in self._all))

    def drain(self) -> None:
        for cache in self._all:
            cache.drain()

    def drain_threadsafe(self) -> None:
        """Wake every long poll and event stream and stop being ready: from a signal
        handler or another thread."""
        for cache in self._all:
            cache.drain_threadsafe()

    @property
    def ready(self) -> bool:
        return all(cache.ready for cache in self._all)

    def by_cache(self) -> dict[str, dict[str, dict[str, object]]]:
        """Each watch's scopes (``synced``, ``healthy``, ``error``), by cache."""
        status = {
            self.restarts.name: self.restarts.scope_status(),
            self.pods.name: self.pods.scope_status(),
            self.rollouts.name: self.rollouts.scope_status(),
        }
        status.update(self.budgets.scope_status())
        return status

    def scope_status(self) -> dict[str, dict[str, object]]:
        """Each scope over every cache: synced and healthy when every cache's watch of it
        is, with the errors of those that are not, each named by its cache."""
        combined: dict[str, dict[str, object]] = {}
        for cache, scopes in self.by_cache().items():
            for scope, state in scopes.items():
                into = combined.setdefault(scope, {"synced": True, "healthy": True, "error": None})
                into["synced"] = bool(into["synced"]) and bool(state["synced"])
                into["healthy"] = bool(into["healthy"]) and bool(state["healthy"])
                if state["error"]:
                    error = f"{cache}: {state['error']}"
                    into["error"] = f"{into['error']}; {error}" if into["error"] else error
        return combined
