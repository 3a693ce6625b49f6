"""Every cache together (readiness, /readyz's scopes, the ready gauge, drain) and what the
restart cache gained for rollouts (the rollout a restart belongs to, subscribers), over a fake
of our own ``KubeAPI`` port."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from service.cache.caches import Caches
from service.cache.entries import make_entry
from service.config import Settings
from service.core.errors import KubeForbidden
from service.core.objects import KubeObject
from service.kube.port import PDBS, PODS, PUBS, ROLLOUTS
from service.metrics import Metrics
from tests.support.caches import pod_object, rollout_object, until, watch_event
from tests.support.fake_kube import FakeKube


def crr(name: str, rv: int, *, rollout: str | None = None, pod: str = "web-0") -> KubeObject:
    labels = {"crr-gateway.io/rollout": rollout} if rollout else {}
    return {
        "apiVersion": "apps.kruise.io/v1beta1",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv), "labels": labels},
        "spec": {"podName": pod, "containers": [{"name": "app"}]},
        "status": {"phase": "Recreating"},
    }


def run(
    kube: FakeKube, body: Callable[[Caches, Metrics], Awaitable[None]], **settings: Any
) -> None:
    async def main() -> None:
        metrics = Metrics()
        options: dict[str, Any] = {"namespaces": ["ns"], "relist_backoff_initial_seconds": 0.01}
        caches = Caches.build(kube, Settings(**(options | settings)), metrics)
        await caches.start()
        try:
            await body(caches, metrics)
        finally:
            await caches.stop()

    asyncio.run(main())


def test_ready_when_every_cache_is_and_readyz_scopes_name_the_failing_one() -> None:
    kube = FakeKube()
    kube.objects[PODS] = [pod_object("web-0", 5)]
    kube.objects[ROLLOUTS] = [rollout_object("r", 6)]
    kube.object_list_errors[PDBS] = KubeForbidden("poddisruptionbudgets is forbidden")

    async def body(caches: Caches, metrics: Metrics) -> None:
        await until(lambda: caches.restarts.ready and caches.pods.ready and caches.rollouts.ready)
        await until(lambda: caches.by_cache()["poddisruptionbudgets"]["ns"]["error"] is not None)
        assert not caches.ready
        assert metrics.registry.get_sample_value("crr_gateway_cache_ready") == 0
        scope = caches.scope_status()["ns"]
        assert scope["synced"] is False and scope["healthy"] is False
        assert scope["error"] == "poddisruptionbudgets: poddisruptionbudgets is forbidden"
        assert set(caches.by_cache()) == {
            "restarts",
            "pods",
            "rollouts",
            "poddisruptionbudgets",
            "podunavailablebudgets",
        }
        del kube.object_list_errors[PDBS]
        await until(lambda: caches.ready)
        assert caches.scope_status() == {"ns": {"synced": True, "healthy": True, "error": None}}
        assert metrics.registry.get_sample_value("crr_gateway_cache_ready") == 1
        for name in ("restarts", "pods", "rollouts", "podunavailablebudgets"):
            ready = metrics.registry.get_sample_value(
                "crr_gateway_watch_cache_ready", {"cache": name}
            )
            assert ready == 1, name
        assert caches.pods.get("ns", "web-0") is not None
        assert caches.rollouts.get("ns", "r") is not None
        caches.drain_threadsafe()
        await until(lambda: not caches.ready)
        assert caches.restarts.draining and caches.pods.draining and caches.budgets.draining
        assert metrics.registry.get_sample_value("crr_gateway_cache_ready") == 0

    run(kube, body)


def test_a_cluster_without_pod_unavailable_budgets_is_ready() -> None:
    kube = FakeKube()
    kube.not_served.add(PUBS)

    async def body(caches: Caches, metrics: Metrics) -> None:
        await until(lambda: caches.ready)
        assert caches.budgets.in_namespace("ns") == []

    run(kube, body)


def test_restarts_know_their_rollout_and_subscribers_hear_every_change() -> None:
    kube = FakeKube()
    kube.items = [crr("r-1", 10, rollout="r"), crr("r-2", 11, rollout="r", pod="web-1")]
    kube.items.append(crr("single", 12))
    heard: list[tuple[str, str]] = []

    async def body(caches: Caches, metrics: Metrics) -> None:
        cache = caches.restarts
        cache.subscribe(lambda namespace, name: heard.append((namespace, name)))
        await until(lambda: cache.ready)
        assert sorted(heard) == [("ns", "r-1"), ("ns", "r-2"), ("ns", "single")]
        assert sorted(e.restart.name for e in cache.for_rollout("ns", "r")) == ["r-1", "r-2"]
        assert cache.for_rollout("ns", "other") == []
        assert cache.for_rollout("other", "r") == []
        single = cache.get("ns", "single")
        assert single is not None and single.rollout is None
        heard.clear()
        kube.events.put(watch_event("DELETED", crr("r-1", 20, rollout="r")))
        await until(lambda: heard == [("ns", "r-1")])
        gone = cache.tombstone("ns", "r-2")
        assert gone is not None and gone.rollout == "r"  # a tombstone keeps its rollout
        assert heard == [("ns", "r-1"), ("ns", "r-2")]
        assert {e.deleted_at is not None for e in cache.for_rollout("ns", "r")} == {True}
        assert make_entry(crr("x", 1, rollout="r")).rollout == "r"

    run(kube, body)
