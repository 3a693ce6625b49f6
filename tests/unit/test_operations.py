"""A single restart's create reads its pod from the pod cache, over a fake of our own ``KubeAPI``
port: no GET when the cache can answer; a GET before any "not found" or refusal the cache
alone would give (it may be behind), and while it has not synced the namespace."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.cache.caches import Caches
from service.config import Settings
from service.core.errors import (
    KruiseLagging,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
    PodNotFound,
    PodNotRestartable,
    RestartInProgress,
)
from service.core.identity import ANONYMOUS
from service.core.objects import KubeObject
from service.core.schemas import RestartRequest
from service.kube.port import PODS
from service.kube.recorder import EventRecorder
from service.metrics import Metrics
from service.operations import RestartOperations
from tests.support.caches import pod_object, until, watch_event
from tests.support.fake_kube import FakeKube


class CreateKube(FakeKube):
    """The apiserver's own pods (what a GET answers) apart from what the pod watch says."""

    def __init__(self) -> None:
        super().__init__()
        self.apiserver_pods: dict[str, KubeObject] = {}
        self.pod_reads: list[str] = []
        self.created: list[KubeObject] = []

    def get_pod(self, namespace: str, name: str) -> KubeObject:
        self.pod_reads.append(name)
        if name not in self.apiserver_pods:
            raise KubeNotFound(f'pods "{name}" not found', code=404)
        return self.apiserver_pods[name]

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject:
        self.created.append(body)
        meta = {**body["metadata"], "resourceVersion": str(200 + len(self.created))}
        return {**body, "metadata": meta}


Body = Callable[[RestartOperations, Caches], Awaitable[None]]


def run(kube: CreateKube, body: Body) -> None:
    async def main() -> None:
        settings = Settings(
            namespaces=["ns"], record_events=False, relist_backoff_initial_seconds=0.01
        )
        metrics = Metrics()
        caches = Caches.build(kube, settings, metrics)
        recorder = EventRecorder(kube, enabled=settings.record_events)
        operations = RestartOperations(
            kube, caches.restarts, settings, metrics, pods=caches.pods, recorder=recorder
        )
        await caches.start()
        try:
            await body(operations, caches)
        finally:
            await caches.stop()
            await recorder.drain()

    asyncio.run(main())


async def create(operations: RestartOperations, pod: str, **fields: Any) -> str:
    outcome = await operations.create("ns", RestartRequest(pod=pod, **fields), caller=ANONYMOUS)
    assert outcome.created
    return outcome.entry.restart.name


def test_a_pod_in_the_cache_is_not_read_again() -> None:
    kube = CreateKube()
    kube.objects[PODS] = [pod_object("web-0", 10, containers=("app", "sidecar"))]

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.ready)
        await create(operations, "web-0", containers=["sidecar"])
        assert kube.pod_reads == []
        (crr,) = kube.created
        assert crr["spec"]["podName"] == "web-0"
        assert [c["name"] for c in crr["spec"]["containers"]] == ["sidecar"]

    run(kube, body)


def test_a_pod_the_cache_does_not_have_yet_is_read_before_answering() -> None:
    kube = CreateKube()
    kube.apiserver_pods["web-new"] = pod_object("web-new", 11)  # the watch is behind

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.ready)
        await create(operations, "web-new")
        assert kube.pod_reads == ["web-new"]
        with pytest.raises(PodNotFound, match="no found Pod named web-missing"):
            await create(operations, "web-missing")
        assert kube.pod_reads == ["web-new", "web-missing"]

    run(kube, body)


def test_a_pod_the_cache_shows_pending_is_read_before_refusing() -> None:
    kube = CreateKube()
    kube.objects[PODS] = [
        pod_object("web-0", 10, node=""),
        pod_object("web-1", 11, node=""),
        pod_object("web-2", 12),
    ]
    kube.apiserver_pods["web-0"] = pod_object("web-0", 12)  # scheduled and running since
    kube.apiserver_pods["web-1"] = pod_object("web-1", 11, node="")  # truly pending

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.ready)
        await create(operations, "web-0")
        with pytest.raises(PodNotRestartable, match="pending Pod"):
            await create(operations, "web-1")
        assert kube.pod_reads == ["web-0", "web-1"]
        # a container the cached pod does not have (yet): read again too before refusing
        kube.apiserver_pods["web-2"] = pod_object("web-2", 13, containers=("app", "new"))
        await create(operations, "web-2", containers=["new"])
        assert kube.pod_reads == ["web-0", "web-1", "web-2"]

    run(kube, body)


def test_a_cached_pod_replaced_under_its_name_is_read_before_the_active_check() -> None:
    """An active restart of a newer pod of the same name (its CRR carries the new UID) tells
    the cache is behind: the GET's pod, with the new UID, meets the active restart."""
    kube = CreateKube()
    kube.objects[PODS] = [pod_object("web-0", 10, uid="old")]
    kube.apiserver_pods["web-0"] = pod_object("web-0", 20, uid="new")
    kube.items = [
        {
            "metadata": {
                "name": "running",
                "namespace": "ns",
                "resourceVersion": "21",
                "labels": {"crr.apps.kruise.io/pod-uid": "new"},
            },
            "spec": {"podName": "web-0", "containers": [{"name": "app"}]},
            "status": {"phase": "Recreating"},
        }
    ]

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.ready)
        with pytest.raises(RestartInProgress, match="restart running is still active"):
            await create(operations, "web-0")
        assert kube.pod_reads == ["web-0"]

    run(kube, body)


def test_before_the_pod_cache_has_synced_every_create_reads_its_pod() -> None:
    kube = CreateKube()
    kube.object_list_errors[PODS] = KubeUnavailable("refused")
    kube.apiserver_pods["web-0"] = pod_object("web-0", 10)

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.restarts.ready)
        assert not caches.pods.synced("ns")
        await create(operations, "web-0")
        assert kube.pod_reads == ["web-0"]
        # once synced, a pod change reaches the create with no GET
        del kube.object_list_errors[PODS]
        await until(lambda: caches.pods.synced("ns"))
        kube.object_events[PODS].put(watch_event("ADDED", pod_object("web-1", 30)))
        await until(lambda: caches.pods.get("ns", "web-1") is not None)
        await create(operations, "web-1")
        assert kube.pod_reads == ["web-0"]

    run(kube, body)


def test_while_the_pod_watch_is_lost_every_create_reads_its_pod() -> None:
    kube = CreateKube()
    kube.objects[PODS] = [pod_object("web-0", 10), pod_object("web-1", 11)]
    kube.apiserver_pods["web-0"] = pod_object("web-0", 10)

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.ready)
        kube.object_list_errors[PODS] = KubeUnavailable("refused")
        kube.object_events[PODS].put(KubeUnavailable("stream broken"))
        await until(lambda: caches.pods.stale_since("ns") is not None)
        await create(operations, "web-0")
        assert kube.pod_reads == ["web-0"]
        # the apiserver's answer, not the cache's: web-1 is gone there
        with pytest.raises(PodNotFound):
            await create(operations, "web-1")

    run(kube, body)


class LaggingWebhookKube(CreateKube):
    """kruise's webhook, whose informer is behind the pod we read: it refuses the first
    ``lagging`` creates with ``refusal``, as the real webhook words it."""

    def __init__(self, refusal: str, lagging: int) -> None:
        super().__init__()
        self.refusal = refusal
        self.lagging = lagging
        self.attempts = 0

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject:
        self.attempts += 1
        if self.attempts <= self.lagging:
            raise KubeInvalid(
                'admission webhook "mcontainerrecreaterequest.kb.io" denied the request: '
                + self.refusal,
                code=400,
            )
        return super().create_crr(namespace, body, dry_run=dry_run)


@pytest.mark.parametrize(
    "refusal",
    [
        "no found Pod named web-0",
        "not allowed to recreate containers in a pending Pod",
        "no containerID in app containerStatus, maybe the container has not been initialized",
    ],
)
def test_a_webhook_behind_the_pod_we_read_is_waited_for(refusal: str) -> None:
    """The webhook contradicts a running pod we just read: its informer is behind. The create
    waits for it, and when it stays behind answers 503 to retry, never 404 or 409."""
    kube = LaggingWebhookKube(refusal, lagging=2)
    kube.objects[PODS] = [pod_object("web-0", 10), pod_object("web-1", 11)]

    async def body(operations: RestartOperations, caches: Caches) -> None:
        operations.webhook_lag_delays = (0.01,) * 5
        await until(lambda: caches.ready)
        await create(operations, "web-0")
        assert kube.attempts == 3
        kube.attempts, kube.lagging = 0, 100
        with pytest.raises(KruiseLagging, match="retry shortly") as lagging:
            await create(operations, "web-1")
        assert lagging.value.status == 503
        assert refusal in lagging.value.detail

    run(kube, body)


def test_a_pod_that_became_inactive_is_refused_at_once() -> None:
    kube = LaggingWebhookKube("not allowed to recreate containers in an inactive Pod", lagging=9)
    kube.objects[PODS] = [pod_object("web-0", 10)]

    async def body(operations: RestartOperations, caches: Caches) -> None:
        await until(lambda: caches.ready)
        with pytest.raises(PodNotRestartable, match="inactive Pod"):
            await create(operations, "web-0")
        assert kube.attempts == 1

    run(kube, body)
