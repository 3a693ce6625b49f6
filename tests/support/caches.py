"""For the tests of the watch caches: waiting on a condition inside the event loop, watch
events, and objects as the apiserver sends them (pods, disruption budgets, RestartRollouts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from service.config import Settings
from service.core.objects import KubeObject
from service.kube.port import WatchEvent
from service.metrics import Metrics
from tests.support.clock import ManualClock


class Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


C = TypeVar("C", bound=Startable)


def run_started(
    make: Callable[[Settings, Metrics, ManualClock], C],
    body: Callable[[C, ManualClock, Metrics], Awaitable[None]],
    **settings: Any,
) -> None:
    """Build a cache serving namespace ``ns`` (quick relists), start it, run ``body`` on the
    event loop, and stop it."""

    async def main() -> None:
        clock = ManualClock(1000.0)
        metrics = Metrics()
        options: dict[str, Any] = {"namespaces": ["ns"], "relist_backoff_initial_seconds": 0.01}
        cache = make(Settings(**(options | settings)), metrics, clock)
        await cache.start()
        try:
            await body(cache, clock, metrics)
        finally:
            await cache.stop()

    asyncio.run(main())


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the event loop until ``check()`` holds (the reflector's threads post there)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def watch_event(kind: str, obj: KubeObject) -> WatchEvent:
    return {"type": kind, "object": obj}  # type: ignore[typeddict-item]


def pod_object(
    name: str,
    rv: int,
    *,
    namespace: str = "ns",
    labels: Mapping[str, str] | None = None,
    ready: bool = True,
    uid: str | None = None,
    containers: Sequence[str] = ("app",),
    node: str = "node-1",
) -> KubeObject:
    """A running pod as the apiserver answers it, with the fields the cache drops too."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{name}",
            "resourceVersion": str(rv),
            "labels": dict(labels or {"app": "web"}),
            "annotations": {"big": "x" * 100},
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "ownerReferences": [
                {
                    "apiVersion": "apps.kruise.io/v1alpha1",
                    "kind": "CloneSet",
                    "name": "web",
                    "uid": "cs-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "readinessGates": [{"conditionType": "KruisePodReady"}],
            "containers": [
                {"name": c, "image": f"example.test/{c}:1", "env": [{"name": "A", "value": "1"}]}
                for c in containers
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-11-27T10:00:01Z",
                    "lastProbeTime": None,
                }
            ],
            "containerStatuses": [
                {
                    "name": c,
                    "containerID": f"containerd://{name}-{c}",
                    "ready": ready,
                    "restartCount": 0,
                    "started": True,
                    "image": f"example.test/{c}:1",
                    "state": {"running": {"startedAt": "2026-11-27T10:00:01Z"}},
                }
                for c in containers
            ],
        },
    }


def budget_object(
    kind: str,
    name: str,
    rv: int,
    *,
    namespace: str = "ns",
    selector: Mapping[str, Any] | None = None,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    target_ref: Mapping[str, str] | None = None,
) -> KubeObject:
    """A PodDisruptionBudget (policy/v1) or PodUnavailableBudget (policy.kruise.io)."""
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = dict(selector)
    if target_ref is not None:
        spec["targetRef"] = dict(target_ref)
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    group = "policy/v1" if kind == "PodDisruptionBudget" else "policy.kruise.io/v1alpha1"
    return {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rv)},
        "spec": spec,
        "status": {"currentHealthy": 3},
    }


def rollout_object(
    name: str,
    rv: int,
    *,
    namespace: str = "ns",
    pods: Sequence[str] = ("web-0", "web-1"),
    phase: str | None = None,
    idempotency: str | None = None,
    request_hash: str | None = None,
) -> KubeObject:
    """A RestartRollout as the CRD stores it (deploy/crds/restartrollouts.yaml)."""
    labels = {"app.kubernetes.io/managed-by": "crr-gateway"}
    if idempotency is not None:
        labels["crr-gateway.io/idempotency-key"] = idempotency
    annotations = {"crr-gateway.io/requested-by": "alice"}
    if request_hash is not None:
        annotations["crr-gateway.io/request-hash"] = request_hash
    obj: KubeObject = {
        "apiVersion": "crr-gateway.io/v1alpha1",
        "kind": "RestartRollout",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(rv),
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "labels": labels,
            "annotations": annotations,
            "managedFields": [{"manager": "crr-gateway", "operation": "Update"}],
        },
        "spec": {
            "target": {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": "web"},
            "podSelector": {"matchLabels": {"app": "web"}},
            "maxUnavailable": 1,
            "resolvedMaxUnavailable": 1,
            "pods": [{"name": p, "uid": f"uid-{p}"} for p in pods],
        },
    }
    if phase is not None:
        obj["status"] = {
            "phase": phase,
            "pods": [
                {
                    "name": p,
                    "uid": f"uid-{p}",
                    "state": "Succeeded" if phase == "Succeeded" else "Waiting",
                }
                for p in pods
            ],
        }
    return obj
