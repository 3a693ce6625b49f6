"""The disruption budgets a rollout honours, per served scope: ``policy/v1``
PodDisruptionBudgets and OpenKruise ``policy.kruise.io/v1alpha1`` PodUnavailableBudgets, each
from its own watch. A cluster that does not serve PodUnavailableBudgets has none (not an
error: it is looked at again from time to time, in case OpenKruise's CRD arrives)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from service.cache.objects import ObjectStore, object_identity
from service.cache.sources import ResourceSource
from service.config import Settings
from service.core.objects import KubeObject, section
from service.core.selection import DisruptionBudget, disruption_budget
from service.kube.port import PDBS, PUBS, KubeAPI
from service.metrics import Metrics

_METADATA = ("name", "namespace", "uid", "resourceVersion")
_SPEC = ("selector", "minAvailable", "maxUnavailable", "targetRef")


def trim_budget(obj: KubeObject) -> KubeObject:
    """A budget with what its allowance is computed from (its spec) and its identity."""
    meta, spec = section(obj, "metadata"), section(obj, "spec")
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "metadata": {key: meta[key] for key in _METADATA if key in meta},
        "spec": {key: spec[key] for key in _SPEC if key in spec},
    }


class BudgetCache:
    """Both kinds of budget; ready when both watches are (or PUBs are not served)."""

    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        pdbs = ResourceSource(kube, PDBS, name="poddisruptionbudgets")
        pubs = ResourceSource(kube, PUBS, name="podunavailablebudgets", optional=True)
        self._stores = {
            kind: ObjectStore(source, trim_budget, object_identity, settings, metrics, clock=clock)
            for kind, source in (("PodDisruptionBudget", pdbs), ("PodUnavailableBudget", pubs))
        }

    # ---------------------------------------------------------------- reads (event loop)

    def in_namespace(self, namespace: str) -> list[DisruptionBudget]:
        """The namespace's budgets that have a label selector (PodDisruptionBudgets first,
        each kind by name); a PodUnavailableBudget given by ``targetRef`` is not read."""
        budgets = (
            disruption_budget(kind, obj)
            for kind, store in self._stores.items()
            for obj in store.in_namespace(namespace)
        )
        return [b for b in budgets if b is not None]

    def synced(self, namespace: str) -> bool:
        return all(store.synced(namespace) for store in self._stores.values())

    def stale_since(self, namespace: str) -> datetime | None:
        """The earliest time a watch serving ``namespace`` lost the apiserver, if one has."""
        times = [t for s in self._stores.values() if (t := s.stale_since(namespace)) is not None]
        return min(times, default=None)

    @property
    def ready(self) -> bool:
        return all(store.ready for store in self._stores.values())

    def scope_status(self) -> dict[str, dict[str, dict[str, object]]]:
        """Each watch's scopes, by the resource it watches."""
        return {store.name: store.scope_status() for store in self._stores.values()}

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(namespace)`` on the event loop after a budget there changes."""
        for store in self._stores.values():
            store.subscribe(callback)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        for store in self._stores.values():
            await store.start()

    async def stop(self) -> None:
        await asyncio.gather(*(store.stop() for store in self._stores.values()))

    def drain(self) -> None:
        for store in self._stores.values():
            store.drain()

    def drain_threadsafe(self) -> None:
        for store in self._stores.values():
            store.drain_threadsafe()

    @property
    def draining(self) -> bool:
        return any(store.draining for store in self._stores.values())
