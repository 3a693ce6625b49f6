"""The generic reflector over a fake of our own ``KubeAPI`` port and a sink that records what
reaches the event loop: decoding in its threads, bookmarks, relists, optional resources the
cluster does not serve, objects that cannot be read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from service.cache.reflector import Reflector
from service.cache.scopes import WatchScope
from service.cache.sources import ResourceSource
from service.config import Settings
from service.core.errors import KubeUnavailable
from service.core.objects import KubeObject
from service.kube.port import PDBS, Resource
from tests.support.caches import until, watch_event
from tests.support.fake_kube import FakeKube

THINGS = Resource("example.test", "v1", "things")


def thing(name: str, rv: int) -> KubeObject:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}}


class RecordingSink:
    """The sink's calls, each checked to run on the event loop's thread."""

    def __init__(self) -> None:
        self.lists: list[tuple[WatchScope, list[str]]] = []
        self.events: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.loop = asyncio.get_running_loop()

    def _on_loop(self) -> None:
        assert asyncio.get_running_loop() is self.loop

    def apply_list(self, scope: WatchScope, items: list[str], now: float) -> None:
        self._on_loop()
        self.lists.append((scope, items))

    def apply_event(self, kind: str, item: str) -> None:
        self._on_loop()
        self.events.append((kind, item))

    def set_unhealthy(self, scope: WatchScope, error: str, since: datetime) -> None:
        self._on_loop()
        self.errors.append(error)


def decode(obj: KubeObject, deleted_at: float | None) -> str:
    """Names with a mark for deletions; an object without a name cannot be read."""
    name = obj["metadata"]["name"]
    return f"{name}{'(deleted)' if deleted_at is not None else ''}"


def run(
    kube: FakeKube,
    resource: Resource,
    body: Callable[[RecordingSink, list[tuple[str, str]]], Awaitable[None]],
    *,
    optional: bool = False,
    **settings: Any,
) -> None:
    async def main() -> None:
        sink = RecordingSink()
        relists: list[tuple[str, str]] = []
        source = ResourceSource(kube, resource, name="things", optional=optional)
        reflector = Reflector(
            source,
            decode,
            sink,
            ["ns"],
            Settings(namespaces=["ns"], relist_backoff_initial_seconds=0.01, **settings),
            clock=lambda: 5.0,
            on_relist=lambda scope, reason: relists.append((scope, reason)),
        )
        reflector.start(asyncio.get_running_loop())
        try:
            await body(sink, relists)
        finally:
            reflector.stop()
            await reflector.join()

    asyncio.run(main())


def test_lists_then_watches_from_the_lists_version_and_relists_on_a_watch_error() -> None:
    kube = FakeKube()
    kube.objects[THINGS] = [thing("a", 1), thing("b", 2)]

    async def body(sink: RecordingSink, relists: list[tuple[str, str]]) -> None:
        await until(lambda: sink.lists == [("ns", ["a", "b"])])
        events = kube.object_events[THINGS]
        events.put(watch_event("ADDED", thing("c", 3)))
        events.put(watch_event("BOOKMARK", {"metadata": {"resourceVersion": "40"}}))
        events.put(watch_event("DELETED", thing("a", 41)))
        await until(lambda: len(sink.events) == 2)
        # decoded in the thread, deletions marked; a bookmark only moves the version on
        assert sink.events == [("ADDED", "c"), ("DELETED", "a(deleted)")]
        # an ERROR other than 410 Gone: unhealthy, and a relist after the backoff
        events.put(watch_event("ERROR", {"code": 500, "message": "etcd hiccup"}))
        await until(lambda: len(sink.errors) == 1)
        assert "etcd hiccup" in sink.errors[0]
        await until(lambda: len(sink.lists) == 2)  # a broken watch relists
        assert relists == [("ns", "error")]
        assert kube.object_watch_versions[THINGS][0] == "100"

    run(kube, THINGS, body)


def test_an_object_that_cannot_be_read_is_left_out() -> None:
    kube = FakeKube()
    kube.objects[THINGS] = [thing("a", 1), {"metadata": {"namespace": "ns"}}]

    async def body(sink: RecordingSink, relists: list[tuple[str, str]]) -> None:
        await until(lambda: sink.lists == [("ns", ["a"])])
        kube.object_events[THINGS].put(watch_event("ADDED", {"metadata": {}}))
        kube.object_events[THINGS].put(watch_event("ADDED", thing("b", 2)))
        await until(lambda: sink.events == [("ADDED", "b")])
        assert relists == [] and sink.errors == []

    run(kube, THINGS, body)


def test_an_optional_resource_the_cluster_does_not_serve_is_empty_and_asked_again() -> None:
    kube = FakeKube()
    kube.not_served.add(PDBS)

    async def body(sink: RecordingSink, relists: list[tuple[str, str]]) -> None:
        await until(lambda: len(sink.lists) >= 2)
        assert sink.lists[:2] == [("ns", []), ("ns", [])]
        assert sink.errors == [] and relists == []
        kube.not_served.discard(PDBS)
        kube.objects[PDBS] = [thing("pdb", 7)]
        await until(lambda: sink.lists[-1] == ("ns", ["pdb"]))

    run(kube, PDBS, body, optional=True, relist_backoff_max_seconds=0.02)


def test_failures_back_off_and_report_each_error() -> None:
    kube = FakeKube()
    kube.object_list_errors[THINGS] = KubeUnavailable("refused")

    async def body(sink: RecordingSink, relists: list[tuple[str, str]]) -> None:
        await until(lambda: len(sink.errors) >= 3)
        assert set(sink.errors) == {"refused"}
        assert {reason for _, reason in relists} == {"error"}
        assert sink.lists == []
        del kube.object_list_errors[THINGS]
        await until(lambda: sink.lists == [("ns", [])], timeout=10)

    run(kube, THINGS, body)
