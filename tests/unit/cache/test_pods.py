"""The pod cache over a fake of our own ``KubeAPI`` port: the records the rules read, their
shared parts, list then watch, deletions, stale events, relists that replace the scope,
label selectors, subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from service.cache.pods import PodCache, Shared
from service.core.errors import KubeUnavailable, PodNotRestartable
from service.core.pods import Container, Owner, Pod, PodConditions, PodSpec
from service.core.rules import (
    check_pod_restartable,
    readiness_warnings,
    resolve_containers,
)
from service.kube.port import PODS
from service.metrics import Metrics
from tests.support.caches import pod_object, run_started, until, watch_event
from tests.support.clock import ManualClock
from tests.support.fake_kube import FakeKube


def run(
    kube: FakeKube,
    body: Callable[[PodCache, ManualClock, Metrics], Awaitable[None]],
    **settings: Any,
) -> None:
    run_started(lambda s, m, c: PodCache(kube, s, m, clock=c), body, **settings)


def test_a_pod_record_keeps_what_the_rules_read() -> None:
    full = pod_object("web-0", 5, containers=("app", "sidecar"))
    full["spec"]["terminationGracePeriodSeconds"] = 45
    full["spec"]["containers"][1]["startupProbe"] = {"initialDelaySeconds": 7, "periodSeconds": 1}
    full["spec"]["containers"][1]["readinessProbe"] = {"initialDelaySeconds": 3}
    pod = Pod.from_object(full)
    assert pod == Pod(
        name="web-0",
        namespace="ns",
        uid="uid-web-0",
        resource_version="5",
        labels={"app": "web"},
        controller=Owner(kind="CloneSet", uid="cs-uid"),
        deleting=False,
        spec=PodSpec(
            node_name="node-1",
            restart_policy="Always",
            readiness_gates=("KruisePodReady",),
            termination_grace_period=45,
            containers=(Container("app"), Container("sidecar", 7, 3)),
        ),
        phase="Running",
        conditions=PodConditions(ready=True, ready_since="2026-11-27T10:00:01Z"),
        status_names=("app", "sidecar"),
        status_ids=("containerd://web-0-app", "containerd://web-0-sidecar"),
    )
    assert pod.ready and pod.ready_since() == datetime(2026, 11, 27, 10, 0, 1, tzinfo=UTC)
    assert pod.container_names == ["app", "sidecar"]
    assert pod.container_ids() == {
        "app": "containerd://web-0-app",
        "sidecar": "containerd://web-0-sidecar",
    }
    assert pod.container_ids(["sidecar"]) == {"sidecar": "containerd://web-0-sidecar"}
    assert pod.controller_uid == "cs-uid"
    check_pod_restartable(pod)
    assert resolve_containers(pod, None) == ["app", "sidecar"]
    assert readiness_warnings(pod) == []
    pending = pod_object("web-1", 5, node="")
    with pytest.raises(PodNotRestartable):
        check_pod_restartable(Pod.from_object(pending))


def test_a_pod_without_optional_sections_reads_as_empty() -> None:
    pod = Pod.from_object({"metadata": {"name": "bare", "namespace": "ns"}})
    assert pod == Pod(
        name="bare",
        namespace="ns",
        uid="",
        resource_version="",
        labels={},
        controller=None,
        deleting=False,
        spec=PodSpec(),
        phase="",
        conditions=PodConditions(),
        status_names=(),
        status_ids=(),
    )
    assert not pod.ready and pod.ready_since() is None and pod.container_ids() == {}
    assert pod.container_id("app") is None


def test_container_ids_read_back_exactly_however_they_are_held() -> None:
    digest = "0123456789abcdef" * 4
    real = pod_object("web-0", 5, containers=("app", "sidecar", "log"))
    for status, cid in zip(
        real["status"]["containerStatuses"],
        [f"containerd://{digest}", f"containerd://{digest[::-1]}", ""],
        strict=True,
    ):
        status["containerID"] = cid
    cases = {
        "one runtime, all started": ({"app": 0, "sidecar": 1}, True),
        "one not started": ({"app": 0, "sidecar": 1, "log": 2}, False),
        "two runtimes": ({"app": 0, "sidecar": 1, "log": 3}, False),
        "upper-case digits": ({"app": 4}, False),
        "not hex": ({"app": 5}, False),
    }
    ids = [
        f"containerd://{digest}",
        f"containerd://{digest[::-1]}",
        "",
        f"cri-o://{digest}",
        f"docker://{digest.upper()}",
        f"containerd://{digest[:-2]}zz",
    ]
    for name, (chosen, packed) in cases.items():
        obj = pod_object("web-0", 5, containers=tuple(chosen))
        for status in obj["status"]["containerStatuses"]:
            status["containerID"] = ids[chosen[status["name"]]]
        pod = Pod.from_object(obj)
        assert isinstance(pod.status_ids, bytes) is packed, name
        expected = {c: ids[i] for c, i in chosen.items() if ids[i]}
        assert pod.container_ids() == expected, name
        for container, i in chosen.items():
            assert pod.container_id(container) == ids[i], name
        assert pod.container_id("absent") is None
    started = Pod.from_object(real)
    assert started.container_ids(["log", "sidecar"]) == {"sidecar": f"containerd://{digest[::-1]}"}
    assert resolve_containers(started, ["app", "sidecar"]) == ["app", "sidecar"]


def test_the_parts_pods_repeat_are_one_copy() -> None:
    shared = Shared()
    a, b = (
        Pod.from_object(pod_object(name, 5, containers=("app", "sidecar")), shared)
        for name in ("web-0", "web-1")
    )
    assert a.spec is b.spec and a.labels is b.labels and a.controller is b.controller
    assert a.conditions is b.conditions and a.status_names is b.status_names
    assert a.status_ids != b.status_ids
    unready = Pod.from_object(pod_object("web-2", 5, ready=False), shared)
    assert unready.conditions is not a.conditions and not unready.ready


def test_list_then_watch_adds_changes_and_deletes_pods() -> None:
    kube = FakeKube()
    kube.objects[PODS] = [pod_object("web-1", 10), pod_object("web-0", 11)]

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        assert not cache.synced("ns")
        await until(lambda: cache.ready)
        assert cache.synced("ns") and not cache.synced("other")
        assert [p.name for p in cache.in_namespace("ns")] == ["web-0", "web-1"]
        assert kube.object_watch_versions[PODS] == ["100"]  # watched from the list's version
        got = cache.get("ns", "web-0")
        assert got is not None and got.name == "web-0" and got.labels == {"app": "web"}

        events = kube.object_events[PODS]
        events.put(watch_event("ADDED", pod_object("web-2", 12)))
        events.put(watch_event("MODIFIED", pod_object("web-0", 13, ready=False)))
        events.put(watch_event("MODIFIED", pod_object("web-0", 9)))  # stale: ignored
        events.put(watch_event("DELETED", pod_object("web-1", 14)))
        await until(lambda: cache.get("ns", "web-1") is None)
        assert [p.name for p in cache.in_namespace("ns")] == ["web-0", "web-2"]
        web0 = cache.get("ns", "web-0")
        assert web0 is not None and web0.resource_version == "13"
        assert not web0.ready
        assert cache.get("other", "web-0") is None
        sample = metrics.registry.get_sample_value
        assert sample("crr_gateway_watch_cache_objects", {"cache": "pods", "state": "live"}) == 2
        assert sample("crr_gateway_watch_cache_ready", {"cache": "pods"}) == 1
        assert sample("crr_gateway_watch_cache_events_total", {"cache": "pods", "type": "DELETED"})

    run(kube, body)


def test_a_stale_deletion_keeps_the_newer_pod() -> None:
    """A pod deleted and made again under its name: the old one's DELETED (older version)
    must not remove the new one."""
    kube = FakeKube()
    kube.objects[PODS] = [pod_object("web-0", 20, uid="new")]

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        kube.object_events[PODS].put(watch_event("DELETED", pod_object("web-0", 15, uid="old")))
        kube.object_events[PODS].put(watch_event("ADDED", pod_object("web-9", 21)))
        await until(lambda: cache.get("ns", "web-9") is not None)
        kept = cache.get("ns", "web-0")
        assert kept is not None and kept.uid == "new"

    run(kube, body)


def test_a_relist_replaces_the_scope_and_subscribers_hear_each_namespace_once() -> None:
    kube = FakeKube()
    kube.objects[PODS] = [pod_object("web-0", 10), pod_object("web-1", 11)]
    heard: list[str] = []

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        cache.subscribe(heard.append)
        await until(lambda: cache.ready)
        assert heard == ["ns"]  # one call for the whole list
        kube.object_events[PODS].put(watch_event("MODIFIED", pod_object("web-0", 12)))
        await until(lambda: len(heard) == 2)
        # the watch expires; meanwhile web-0 was deleted and web-5 created
        kube.objects[PODS] = [pod_object("web-1", 11), pod_object("web-5", 30)]
        kube.object_events[PODS].put(
            watch_event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
        )
        await until(lambda: cache.get("ns", "web-5") is not None)
        assert [p.name for p in cache.in_namespace("ns")] == ["web-1", "web-5"]
        assert heard == ["ns", "ns", "ns"]
        labels = {"cache": "pods", "scope": "ns", "reason": "expired"}
        assert metrics.registry.get_sample_value("crr_gateway_watch_cache_relists_total", labels)

    run(kube, body)


def test_matching_follows_label_selector_semantics() -> None:
    kube = FakeKube()
    kube.objects[PODS] = [
        pod_object("web-0", 10, labels={"app": "web", "tier": "front"}),
        pod_object("web-1", 11, labels={"app": "web", "tier": "back"}),
        pod_object("db-0", 12, labels={"app": "db"}),
        pod_object("web-0", 13, namespace="other", labels={"app": "web"}),
    ]

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)

        def names(selector: dict[str, object]) -> list[str]:
            return [p.name for p in cache.matching("ns", selector)]

        assert names({"matchLabels": {"app": "web"}}) == ["web-0", "web-1"]
        assert names({}) == ["db-0", "web-0", "web-1"]
        expression = {"key": "tier", "operator": "NotIn", "values": ["back"]}
        assert names({"matchLabels": {"app": "web"}, "matchExpressions": [expression]}) == ["web-0"]
        assert names({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}) == [
            "db-0"
        ]
        assert names({"matchLabels": {"app": "none"}}) == []

    run(kube, body)


def test_a_subscriber_that_raises_breaks_nothing() -> None:
    kube = FakeKube()
    kube.objects[PODS] = [pod_object("web-0", 10)]
    heard: list[str] = []

    def broken(namespace: str) -> None:
        raise RuntimeError("subscriber bug")

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        cache.subscribe(broken)
        cache.subscribe(heard.append)
        await until(lambda: cache.ready)
        kube.object_events[PODS].put(watch_event("ADDED", pod_object("web-1", 11)))
        await until(lambda: cache.get("ns", "web-1") is not None)
        assert heard == ["ns", "ns"]

    run(kube, body)


def test_readiness_and_staleness_follow_the_watch() -> None:
    kube = FakeKube()
    kube.object_list_errors[PODS] = KubeUnavailable("refused")

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: kube.object_lists[PODS] >= 2)
        await until(lambda: cache.scope_status()["ns"]["error"] is not None)
        assert not cache.ready and not cache.synced("ns")
        assert cache.scope_status() == {
            "ns": {"synced": False, "healthy": False, "error": "refused"}
        }
        del kube.object_list_errors[PODS]
        await until(lambda: cache.ready)
        assert cache.stale_since("ns") is None
        kube.object_list_errors[PODS] = KubeUnavailable("refused again")
        kube.object_events[PODS].put(KubeUnavailable("stream broken"))
        await until(lambda: cache.stale_since("ns") is not None)
        assert cache.synced("ns") and not cache.ready  # still answers, but says it is behind
        del kube.object_list_errors[PODS]
        await until(lambda: cache.ready, timeout=10)

    run(kube, body)


def test_drain_makes_it_unready() -> None:
    kube = FakeKube()

    async def body(cache: PodCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        cache.drain_threadsafe()
        await asyncio.sleep(0.05)
        assert cache.draining and not cache.ready

    run(kube, body)
