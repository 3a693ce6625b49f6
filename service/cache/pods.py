"""The pod cache: one watch of pods per served scope, each pod trimmed to the fields the rules
read (``service.core.rules``, ``service.core.pods``, the rollout rules) in the shape the
apiserver gives them, so every rule reads a cached pod as it reads a fetched one. Rollouts
read their pods and readiness here; single creates read their pod here instead of a GET."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from service.cache.objects import ObjectStore
from service.cache.sources import ResourceSource
from service.config import Settings
from service.core.objects import KubeObject, dict_items, section
from service.core.pods import pod_labels
from service.core.selection import selector_matches
from service.kube.port import PODS, KubeAPI
from service.metrics import Metrics

_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "creationTimestamp",
    "deletionTimestamp",
)
_OWNER = ("apiVersion", "kind", "name", "uid", "controller")
_SPEC = ("nodeName", "restartPolicy", "readinessGates", "terminationGracePeriodSeconds")
_CONTAINER = ("name",)
_PROBES = ("startupProbe", "readinessProbe")  # their delays: how long a restart takes at least
_PROBE = ("initialDelaySeconds", "periodSeconds")
_STATUS = ("phase",)
_CONDITION = ("type", "status", "lastTransitionTime")
_CONTAINER_STATUS = ("name", "containerID", "ready", "restartCount", "started")


def _pick(obj: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: obj[key] for key in keys if key in obj}


def _trim_container(container: Mapping[str, Any]) -> dict[str, Any]:
    trimmed = _pick(container, _CONTAINER)
    for probe in _PROBES:
        if isinstance(container.get(probe), dict):
            trimmed[probe] = _pick(container[probe], _PROBE)
    return trimmed


class Shared:
    """One copy of each part that many pods repeat (a workload's labels, owners and spec; the
    conditions of pods that changed in the same second; the strings every pod has), handed to
    every pod that has it: cached pods are never changed, so sharing is safe, and a namespace
    of one workload's pods holds its spec once instead of once per pod (BENCHMARKS.md,
    "Memory"). Bounded: past ``max_parts`` distinct parts it starts over (pods keep theirs)."""

    def __init__(self, max_parts: int = 4096) -> None:
        self._max = max_parts
        self._parts: dict[str, Any] = {}

    def __call__(self, part: Any) -> Any:
        key = json.dumps(part, sort_keys=True, separators=(",", ":"))
        found = self._parts.get(key)
        if found is not None:
            return found
        if len(self._parts) >= self._max:
            self._parts.clear()
        self._parts[key] = part
        return part

    def strings(self, obj: dict[str, Any], keys: Iterable[str]) -> None:
        for key in keys:
            value = obj.get(key)
            if isinstance(value, str):
                obj[key] = sys.intern(value)


def _unshared(part: Any) -> Any:
    return part


def trim_pod(pod: KubeObject, shared: Shared | None = None) -> KubeObject:
    """The pod with only what the rules read: about a tenth of a pod's JSON; with ``shared``,
    the parts other pods repeat are one copy for all."""
    share: Callable[[Any], Any] = shared if shared is not None else _unshared
    meta = section(pod, "metadata")
    spec = section(pod, "spec")
    status = section(pod, "status")
    trimmed_meta = _pick(meta, _METADATA)
    if "labels" in trimmed_meta:
        trimmed_meta["labels"] = share(trimmed_meta["labels"])
    owners = [_pick(o, _OWNER) for o in dict_items(meta, "ownerReferences")]
    if owners:
        trimmed_meta["ownerReferences"] = share(owners)
    trimmed_spec = _pick(spec, _SPEC)
    trimmed_spec["containers"] = [_trim_container(c) for c in dict_items(spec, "containers")]
    trimmed_status = _pick(status, _STATUS)
    if "conditions" in status:
        trimmed_status["conditions"] = share(
            [_pick(c, _CONDITION) for c in dict_items(status, "conditions")]
        )
    if "containerStatuses" in status:
        statuses = [_pick(c, _CONTAINER_STATUS) for c in dict_items(status, "containerStatuses")]
        if shared is not None:
            for container in statuses:
                shared.strings(container, ("name",))
        trimmed_status["containerStatuses"] = statuses
    if shared is not None:
        shared.strings(trimmed_meta, ("namespace", "creationTimestamp", "deletionTimestamp"))
        shared.strings(trimmed_status, ("phase",))
    return {
        "apiVersion": pod.get("apiVersion", "v1"),
        "kind": pod.get("kind", "Pod"),
        "metadata": trimmed_meta,
        "spec": share(trimmed_spec),
        "status": trimmed_status,
    }


class PodCache(ObjectStore):
    """Pods by namespace and name (trimmed, shared: never change one)."""

    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        shared = Shared()
        super().__init__(
            ResourceSource(kube, PODS, name="pods"),
            lambda pod: trim_pod(pod, shared),
            settings,
            metrics,
            clock=clock,
        )

    def matching(self, namespace: str, selector: Mapping[str, Any]) -> list[KubeObject]:
        """The namespace's pods a label selector (``matchLabels``/``matchExpressions``)
        selects, by name. An empty selector selects every pod, as in Kubernetes."""
        pods = self.in_namespace(namespace)
        return [pod for pod in pods if selector_matches(selector, pod_labels(pod))]
