"""The pod cache: one watch of pods per served scope, each pod held as the record the rules read
(``service.core.pods.Pod``), built once when the watch delivers it. Rollouts read their pods
and readiness here; single creates read their pod here instead of a GET, and a pod they do GET
goes through the same conversion (:meth:`PodCache.decode`), so every rule reads one
representation."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from service.cache.objects import ObjectStore
from service.cache.sources import ResourceSource
from service.config import Settings
from service.core.objects import KubeObject
from service.core.pods import Pod, pod_identity
from service.core.selection import selector_matches
from service.kube.port import PODS, KubeAPI
from service.metrics import Metrics

_T = TypeVar("_T")


class Shared:
    """One copy of each part that many pods repeat (a workload's spec, owner and label set;
    the conditions of pods that became ready in the same second; container names, namespaces
    and other common strings), handed to every pod that has it: records are never changed, so
    sharing is safe, and a namespace of one workload's pods holds its spec once instead of
    once per pod (BENCHMARKS.md, "Memory"). Parts are found by value: the part itself when it
    is hashable, else the key given. One pool per kind of part, each bounded: past
    ``max_parts`` distinct parts a pool starts over (pods keep theirs), so label sets unique
    to each pod (a CloneSet's) churn only the label sets' pool, not the specs'.

    The reflector's threads and the event loop may call it at once: a lookup and an insert
    are each one dict operation, so the worst a race does is keep two copies of a part."""

    def __init__(self, max_parts: int = 4096) -> None:
        self._max = max_parts
        self._pools: dict[type, dict[Hashable, Any]] = {}

    def __call__(self, part: _T, key: Hashable | None = None) -> _T:
        found_by = part if key is None else key
        pool = self._pools.get(type(part))
        if pool is None:
            pool = self._pools.setdefault(type(part), {})
        found = pool.get(found_by)
        if found is not None:
            return found  # type: ignore[no-any-return]  # a pool holds parts of one type
        if len(pool) >= self._max:
            pool.clear()
        pool[found_by] = part
        return part


class PodCache(ObjectStore[Pod]):
    """Pod records by namespace and name (shared parts: never change one)."""

    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = Shared()
        super().__init__(
            ResourceSource(kube, PODS, name="pods"),
            self.decode,
            pod_identity,
            settings,
            metrics,
            clock=clock,
        )

    def decode(self, obj: KubeObject) -> Pod:
        """The record of a pod object from the apiserver (a watch's, or a GET's), its
        repeated parts shared with the cached pods."""
        return Pod.from_object(obj, self._shared)

    def matching(self, namespace: str, selector: Mapping[str, Any]) -> list[Pod]:
        """The namespace's pods a label selector (``matchLabels``/``matchExpressions``)
        selects, by name. An empty selector selects every pod, as in Kubernetes."""
        pods = self.in_namespace(namespace)
        return [pod for pod in pods if selector_matches(selector, pod.labels)]
