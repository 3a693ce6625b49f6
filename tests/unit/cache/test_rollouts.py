"""The rollout cache over a fake of our own ``KubeAPI`` port: RestartRollouts read once into
the API's rollout, the object kept for the controller's next write, the active ones,
Idempotency-Key lookups, tombstones and retention, waiters and subscribers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from service.cache.rollouts import RolloutCache, make_rollout_entry
from service.kube.port import ROLLOUTS
from service.metrics import Metrics
from tests.support.caches import rollout_object, run_started, until, watch_event
from tests.support.clock import ManualClock
from tests.support.fake_kube import FakeKube


def run(
    kube: FakeKube,
    body: Callable[[RolloutCache, ManualClock, Metrics], Awaitable[None]],
    **settings: Any,
) -> None:
    run_started(lambda s, m, c: RolloutCache(kube, s, m, clock=c), body, **settings)


def test_an_entry_is_the_api_rollout_its_bytes_and_the_object_without_managed_fields() -> None:
    obj = rollout_object("r1", 7, idempotency="key-label", request_hash="abc")
    entry = make_rollout_entry(obj)
    assert entry.key == ("ns", "r1")
    assert entry.resource_version == "7"
    assert entry.rollout.name == "r1" and entry.rollout.phase == "Progressing"
    assert [p.pod for p in entry.rollout.pods] == ["web-0", "web-1"]
    assert json.loads(entry.body) == json.loads(entry.rollout.model_dump_json())
    assert "managedFields" not in entry.object["metadata"]
    assert entry.object["spec"] == obj["spec"]
    assert "managedFields" in obj["metadata"]  # the caller's object is left as it was
    assert (entry.idempotency, entry.request_hash, entry.deleted_at) == ("key-label", "abc", None)


def test_list_watch_active_and_in_namespace() -> None:
    kube = FakeKube()
    kube.objects[ROLLOUTS] = [
        rollout_object("b", 10),
        rollout_object("a", 11, phase="Succeeded"),
        rollout_object("c", 12, namespace="ns"),
    ]

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        assert [e.rollout.name for e in cache.in_namespace("ns")] == ["a", "b", "c"]
        assert [e.rollout.name for e in cache.active()] == ["b", "c"]
        events = kube.object_events[ROLLOUTS]
        events.put(watch_event("MODIFIED", rollout_object("b", 20, phase="Succeeded")))
        events.put(watch_event("MODIFIED", rollout_object("c", 5, phase="Succeeded")))  # stale
        events.put(watch_event("ADDED", rollout_object("d", 21)))
        await until(lambda: cache.get("ns", "d") is not None)
        assert [e.rollout.name for e in cache.active()] == ["c", "d"]
        b = cache.get("ns", "b")
        assert b is not None and b.rollout.finished and b.resource_version == "20"

    run(kube, body)


def test_find_idempotent_and_observe_take_only_newer_objects() -> None:
    kube = FakeKube()
    kube.objects[ROLLOUTS] = [rollout_object("r1", 10, idempotency="k1", request_hash="h")]

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        found = cache.find_idempotent("ns", "k1")
        assert found is not None and found.request_hash == "h"
        assert cache.find_idempotent("ns", "k2") is None
        assert cache.find_idempotent("other", "k1") is None
        written = cache.observe(rollout_object("r1", 11, phase="Paused"))
        assert cache.get("ns", "r1") is written
        assert cache.observe(rollout_object("r1", 10)) is written  # older: the cache keeps 11
        created = cache.observe(rollout_object("r2", 12, idempotency="k2"))
        assert cache.find_idempotent("ns", "k2") is created

    run(kube, body)


def test_deleted_rollouts_leave_tombstones_for_the_retention() -> None:
    kube = FakeKube()
    kube.objects[ROLLOUTS] = [
        rollout_object("a", 10),
        rollout_object("b", 11),
        rollout_object("c", 12),
    ]

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        kube.object_events[ROLLOUTS].put(watch_event("DELETED", rollout_object("a", 20)))
        await until(lambda: (e := cache.get("ns", "a")) is not None and e.deleted_at is not None)
        b = cache.observe_deleted(rollout_object("b", 21))
        assert b.deleted_at is not None
        c = cache.tombstone("ns", "c")
        assert c is not None and c.deleted_at is not None and c.rollout.name == "c"
        assert cache.tombstone("ns", "c") is c
        assert cache.tombstone("ns", "missing") is None
        assert cache.active() == []
        sample = metrics.registry.get_sample_value
        labels = {"cache": "rollouts", "state": "tombstone"}
        assert sample("crr_gateway_watch_cache_objects", labels) == 3
        clock.now += 61
        assert cache.get("ns", "a") is None and cache.in_namespace("ns") == []
        assert cache.prune() == 3
        assert sample("crr_gateway_watch_cache_objects", labels) == 0

    run(kube, body, retention_seconds=60)


def test_a_relist_tombstones_what_went_while_the_watch_was_away() -> None:
    kube = FakeKube()
    kube.objects[ROLLOUTS] = [rollout_object("a", 10), rollout_object("b", 11)]

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        kube.objects[ROLLOUTS] = [rollout_object("b", 30, phase="Succeeded")]
        kube.object_events[ROLLOUTS].put(
            watch_event("ERROR", {"kind": "Status", "code": 410, "reason": "Gone"})
        )
        await until(lambda: (e := cache.get("ns", "a")) is not None and e.deleted_at is not None)
        b = cache.get("ns", "b")
        assert b is not None and b.rollout.finished and b.deleted_at is None

    run(kube, body)


def test_waiters_wake_and_subscribers_hear_every_change() -> None:
    kube = FakeKube()
    kube.objects[ROLLOUTS] = [rollout_object("a", 10)]
    heard: list[tuple[str, str]] = []

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        cache.subscribe(lambda namespace, name: heard.append((namespace, name)))
        await until(lambda: cache.ready)
        assert heard == [("ns", "a")]
        waiter = asyncio.create_task(cache.wait_change("ns", "a", 30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        kube.object_events[ROLLOUTS].put(watch_event("MODIFIED", rollout_object("a", 11)))
        await asyncio.wait_for(waiter, 5)
        cache.observe(rollout_object("b", 12))
        cache.tombstone("ns", "b")
        assert heard == [("ns", "a"), ("ns", "a"), ("ns", "b"), ("ns", "b")]
        waiter = asyncio.create_task(cache.wait_change("ns", "a", 30))
        await asyncio.sleep(0.05)
        cache.drain()
        await asyncio.wait_for(waiter, 5)  # a drain wakes every waiter at once
        assert not cache.ready

    run(kube, body)


def test_an_unreadable_rollout_is_left_out_not_a_reason_to_relist() -> None:
    kube = FakeKube()
    broken = rollout_object("broken", 10)
    broken["spec"]["resolvedMaxUnavailable"] = "many"  # hand-made, against the schema
    kube.objects[ROLLOUTS] = [broken, rollout_object("fine", 11)]

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        assert [e.rollout.name for e in cache.in_namespace("ns")] == ["fine"]
        await asyncio.sleep(0.1)
        assert kube.object_lists[ROLLOUTS] == 1

    run(kube, body)


def test_a_cluster_without_the_crd_keeps_it_unready_and_says_why() -> None:
    kube = FakeKube()
    kube.not_served.add(ROLLOUTS)

    async def body(cache: RolloutCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: kube.object_lists[ROLLOUTS] >= 2)
        await until(lambda: cache.scope_status()["ns"]["error"] is not None)
        assert not cache.ready
        error = str(cache.scope_status()["ns"]["error"])
        assert "restartrollouts.crr-gateway.io" in error and "CustomResourceDefinition" in error

    run(kube, body)
