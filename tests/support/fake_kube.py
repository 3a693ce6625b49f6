"""A fake of our own ``KubeAPI`` port (never of the kubernetes client), for the unit tests of
the caches, the routes and auth: lists and watches fed by the test (CRRs, and any other
resource by its ``Resource``), every other call refused unless a test subclass answers it."""

from __future__ import annotations

import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from service.core.errors import KruiseMissing, KubeNotFound
from service.core.objects import KubeObject
from service.kube.port import ListResult, Resource, WatchEvent

_END = object()


class FakeStream:
    def __init__(self, events: queue.Queue[Any]) -> None:
        self._events = events
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[WatchEvent]:
        while not self.closed.is_set():
            try:
                item = self._events.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()


class FakeKube:
    """Just enough of ``service.kube.port.KubeAPI`` for the cache."""

    def __init__(self) -> None:
        self.items: list[KubeObject] = []
        self.list_error: Exception | None = None
        self.events: queue.Queue[Any] = queue.Queue()
        self.lists = 0
        self.watch_versions: list[str] = []
        # any other resource: its objects, its watch events, its failures, by resource
        self.objects: dict[Resource, list[KubeObject]] = defaultdict(list)
        self.object_events: dict[Resource, queue.Queue[Any]] = defaultdict(queue.Queue)
        self.object_list_errors: dict[Resource, Exception] = {}
        self.not_served: set[Resource] = set()
        self.object_lists: Counter[Resource] = Counter()
        self.object_watch_versions: dict[Resource, list[str]] = defaultdict(list)

    def crr_version(self, *, refresh: bool = False) -> str:
        if isinstance(self.list_error, KruiseMissing):
            raise self.list_error
        return "v1beta1"

    def list_crrs(self, namespace: str | None) -> ListResult:
        self.lists += 1
        if self.list_error is not None:
            raise self.list_error
        return ListResult(list(self.items), "100")

    def watch_crrs(
        self, namespace: str | None, resource_version: str, *, timeout_seconds: int
    ) -> FakeStream:
        self.watch_versions.append(resource_version)
        return FakeStream(self.events)

    def get_pod(self, namespace: str, name: str) -> KubeObject:
        raise NotImplementedError

    def list_objects(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> ListResult:
        self.object_lists[resource] += 1
        if resource in self.not_served:
            raise KubeNotFound("the server could not find the requested resource", code=404)
        error = self.object_list_errors.get(resource)
        if error is not None:
            raise error
        wanted = dict(term.split("=", 1) for term in label_selector.split(",") if term)
        items = [
            item
            for item in self.objects[resource]
            if namespace in (None, item["metadata"].get("namespace"))
            and wanted.items() <= (item["metadata"].get("labels") or {}).items()
        ]
        return ListResult(items, "100")

    def watch_objects(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int,
    ) -> FakeStream:
        if resource in self.not_served:
            raise KubeNotFound("the server could not find the requested resource", code=404)
        self.object_watch_versions[resource].append(resource_version)
        return FakeStream(self.object_events[resource])

    def get_object(self, resource: Resource, namespace: str, name: str) -> KubeObject:
        raise NotImplementedError

    def create_object(
        self, resource: Resource, namespace: str, body: KubeObject, *, dry_run: bool = False
    ) -> KubeObject:
        raise NotImplementedError

    def replace_object(
        self, resource: Resource, namespace: str, name: str, body: KubeObject
    ) -> KubeObject:
        raise NotImplementedError

    def patch_object(
        self, resource: Resource, namespace: str, name: str, patch: KubeObject
    ) -> KubeObject:
        raise NotImplementedError

    def delete_object(self, resource: Resource, namespace: str, name: str) -> KubeObject:
        raise NotImplementedError

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject:
        raise NotImplementedError

    def get_crr(self, namespace: str, name: str) -> KubeObject:
        raise NotImplementedError

    def delete_crr(
        self, namespace: str, name: str, *, resource_version: str | None = None
    ) -> KubeObject:
        raise NotImplementedError

    def review_token(self, token: str, audiences: Sequence[str]) -> KubeObject:
        raise NotImplementedError

    def review_access(self, spec: KubeObject) -> KubeObject:
        raise NotImplementedError

    def create_event(self, namespace: str, body: KubeObject) -> KubeObject:
        return body

    def close(self) -> None:
        pass
