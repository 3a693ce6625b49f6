"""The watch cache (the store and its reflector) over a fake of our own ``KubeAPI`` port (never
of the kubernetes client): list, watch, relist on 410, tombstones and retention, waiters,
readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from service.cache.store import RestartCache
from service.config import Settings
from service.core.errors import KruiseMissing, KubeUnavailable
from service.core.objects import KubeObject
from service.kube.port import WatchEvent
from service.metrics import Metrics
from tests.support.clock import ManualClock
from tests.support.fake_kube import FakeKube


def crr(name: str, rv: int, *, completed: bool = False, namespace: str = "ns") -> KubeObject:
    status: dict[str, Any] = {"phase": "Recreating"}
    if completed:
        status = {
            "phase": "Completed",
            "completionTime": "2026-11-27T10:00:05Z",
            "containerRecreateStates": [{"name": "app", "phase": "Succeeded"}],
        }
    return {
        "apiVersion": "apps.kruise.io/v1beta1",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rv)},
        "spec": {"podName": "web-0", "containers": [{"name": "app"}]},
        "status": status,
    }


def event(kind: str, obj: KubeObject) -> WatchEvent:
    return {"type": kind, "object": obj}  # type: ignore[typeddict-item]


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def run_with_cache(
    kube: FakeKube,
    body: Callable[[RestartCache, ManualClock, Metrics], Awaitable[None]],
    **settings: Any,
) -> None:
    async def main() -> None:
        clock = ManualClock(1000.0)
        metrics = Metrics()
        cache = RestartCache(
            kube,
            Settings(namespaces=["ns"], relist_backoff_initial_seconds=0.01, **settings),
            metrics,
            clock=clock,
        )
        await cache.start()
        try:
            await body(cache, clock, metrics)
        finally:
            await cache.stop()

    asyncio.run(main())


def test_list_then_watch_events() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        entry = cache.get("ns", "a")
        assert entry is not None and entry.restart.phase == "Recreating"
        assert kube.watch_versions == ["100"]  # watched from the list's version

        kube.events.put(event("ADDED", crr("b", 101)))
        kube.events.put(event("MODIFIED", crr("a", 102, completed=True)))
        kube.events.put(event("MODIFIED", crr("a", 50)))  # stale: ignored
        await until(lambda: (e := cache.get("ns", "a")) is not None and e.restart.finished)
        await until(lambda: cache.get("ns", "b") is not None)
        await asyncio.sleep(0.1)
        entry = cache.get("ns", "a")
        assert entry is not None
        assert entry.restart.result == "Succeeded"
        assert entry.restart.resourceVersion == "102"
        assert [e.restart.name for e in cache.in_namespace("ns")] == ["a", "b"]
        assert cache.get("other", "a") is None
        sample = metrics.registry.get_sample_value
        labels = {"result": "Succeeded", "failure_reason": ""}
        assert sample("crr_gateway_restarts_finished_total", labels) == 1.0
        assert sample("crr_gateway_cache_restarts", {"state": "live"}) == 2.0

    run_with_cache(kube, body)


def test_deleted_restarts_are_kept_for_the_retention() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10, completed=True), crr("b", 11)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        kube.events.put(event("DELETED", crr("a", 20, completed=True)))
        kube.events.put(event("DELETED", crr("b", 21)))
        await until(lambda: all(e.deleted_at is not None for e in cache.entries()))
        a = cache.get("ns", "a")
        b = cache.get("ns", "b")
        assert a is not None and a.restart.result == "Succeeded"
        assert b is not None and b.restart.result == "Failed"
        assert b.restart.failureReason == "Deleted"
        clock.now += 59
        assert cache.get("ns", "a") is not None
        assert cache.prune() == 0
        clock.now += 2
        assert cache.get("ns", "a") is None
        assert cache.in_namespace("ns") == []
        assert cache.prune() == 2
        assert list(cache.entries()) == []

    run_with_cache(kube, body, retention_seconds=60)


def test_expired_watch_relists_and_deletions_in_the_gap_become_tombstones() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10), crr("b", 11)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        kube.items = [crr("b", 30, completed=True)]
        kube.events.put(event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"}))
        await until(lambda: kube.lists == 2)
        await until(lambda: (e := cache.get("ns", "a")) is not None and e.deleted_at is not None)
        a = cache.get("ns", "a")
        b = cache.get("ns", "b")
        assert a is not None and a.restart.failureReason == "Deleted"
        assert b is not None and b.restart.finished and b.deleted_at is None
        labels = {"scope": "ns", "reason": "expired"}
        assert metrics.registry.get_sample_value("crr_gateway_watch_restarts_total", labels) == 1

    run_with_cache(kube, body)


def test_readiness_follows_the_apiserver() -> None:
    kube = FakeKube()
    kube.list_error = KubeUnavailable("refused")

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: kube.lists >= 2)
        assert not cache.ready
        assert cache.scope_status()["ns"]["error"] == "refused"
        kube.list_error = None
        await until(lambda: cache.ready)
        kube.events.put(KubeUnavailable("stream broken"))  # the watch breaks: relist
        await until(lambda: kube.lists >= 4 and cache.ready, timeout=10)

    run_with_cache(kube, body)


def test_kruise_missing_keeps_the_cache_unready() -> None:
    kube = FakeKube()
    kube.list_error = KruiseMissing("OpenKruise is missing")

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await asyncio.sleep(0.2)
        assert not cache.ready
        assert not cache.synced("ns")
        assert "OpenKruise" in str(cache.scope_status()["ns"]["error"])

    run_with_cache(kube, body)


def test_waiters_wake_on_change_and_time_out_otherwise() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await cache.wait_change("ns", "a", 0.1)
        assert loop.time() - started >= 0.09
        waiter = asyncio.create_task(cache.wait_change("ns", "a", 5))
        await asyncio.sleep(0.05)
        kube.events.put(event("MODIFIED", crr("a", 11)))
        started = loop.time()
        await waiter
        assert loop.time() - started < 2

    run_with_cache(kube, body)


def test_observe_takes_only_newer_objects() -> None:
    kube = FakeKube()

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        first = cache.observe(crr("a", 10))
        assert cache.get("ns", "a") is first
        assert cache.observe(crr("a", 9)) is first
        newer = cache.observe(crr("a", 11))
        assert cache.get("ns", "a") is newer
        gone = cache.observe_deleted(crr("a", 11))
        assert gone.deleted_at is not None and gone.restart.failureReason == "Deleted"

    run_with_cache(kube, body)


def test_tombstone_keeps_the_last_state_as_finished() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10), crr("b", 11, completed=True)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        a = cache.tombstone("ns", "a")
        assert a is not None and a.deleted_at is not None
        assert (a.restart.finished, a.restart.result) == (True, "Failed")
        assert a.restart.failureReason == "Deleted"
        assert cache.tombstone("ns", "a") is a
        b = cache.tombstone("ns", "b")
        assert b is not None and b.restart.result == "Succeeded"
        assert cache.tombstone("ns", "missing") is None

    run_with_cache(kube, body)


def test_stale_since_marks_answers_while_the_watch_is_lost() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        assert cache.stale_since("ns") is None
        kube.list_error = KubeUnavailable("refused")
        kube.events.put(KubeUnavailable("stream broken"))
        await until(lambda: cache.stale_since("ns") is not None)
        since = cache.stale_since("ns")
        await until(lambda: kube.lists >= 3)  # failing relists keep the first failure's time
        assert cache.stale_since("ns") == since
        assert cache.get("ns", "a") is not None  # still answered
        kube.list_error = None
        await until(lambda: cache.ready, timeout=10)
        assert cache.stale_since("ns") is None

    run_with_cache(kube, body)


def test_drain_wakes_waiters_and_stops_new_waits() -> None:
    kube = FakeKube()
    kube.items = [crr("a", 10)]

    async def body(cache: RestartCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        loop = asyncio.get_running_loop()
        waiter = asyncio.create_task(cache.wait_change("ns", "a", 30))
        await asyncio.sleep(0.05)
        started = loop.time()
        cache.drain_threadsafe()
        await waiter
        assert loop.time() - started < 5
        assert cache.draining and not cache.ready
        started = loop.time()
        await cache.wait_change("ns", "a", 30)  # returns at once from now on
        assert loop.time() - started < 5

    run_with_cache(kube, body)
