"""A watch cache of objects by namespace and name, each decoded to what the service reads (pod
records, trimmed disruption budgets). Unlike restarts and rollouts, a deleted object simply
goes: nobody asks about it afterwards. Subscribers hear which namespace changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from service.cache.reflector import WatchSource
from service.cache.scopes import WatchScope
from service.cache.watched import WatchedStore, notify
from service.config import Settings
from service.core.objects import KubeObject, metadata
from service.core.reading import is_newer
from service.metrics import Metrics

T = TypeVar("T")

Identity = Callable[[T], tuple[str, str, str]]
"""An object's (namespace, name, resourceVersion)."""


def object_identity(obj: KubeObject) -> tuple[str, str, str]:
    meta = metadata(obj)
    return (
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        str(meta.get("resourceVersion", "")),
    )


class ObjectStore(WatchedStore[T]):
    """The objects are shared with every reader: read them, never change them."""

    def __init__(
        self,
        source: WatchSource,
        decode: Callable[[KubeObject], T],
        identity: Identity[T],
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            source, lambda obj, _deleted_at: decode(obj), settings, metrics, clock=clock
        )
        self._identity = identity
        self._by_ns: dict[str, dict[str, T]] = {}
        self._subscribers: list[Callable[[str], None]] = []
        self._count = 0

    # ---------------------------------------------------------------- reads (event loop)

    def get(self, namespace: str, name: str) -> T | None:
        return self._by_ns.get(namespace, {}).get(name)

    def in_namespace(self, namespace: str) -> list[T]:
        """A namespace's objects sorted by name."""
        objects = self._by_ns.get(namespace, {})
        return [objects[name] for name in sorted(objects)]

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(namespace)`` on the event loop after every change in a namespace
        (once per namespace for a relist). It must not block."""
        self._subscribers.append(callback)

    def objects(self) -> Iterable[T]:
        """Every object held (for tests and metrics)."""
        for objects in self._by_ns.values():
            yield from objects.values()

    # ---------------------------------------------------------------- writes (event loop)

    def _apply_event(self, kind: str, item: T) -> None:
        namespace, name, version = self._identity(item)
        current = self._by_ns.get(namespace, {}).get(name)
        if kind == "DELETED":
            if current is None or is_newer(self._identity(current)[2], version):
                return
            objects = self._by_ns[namespace]
            del objects[name]
            self._count -= 1
            if not objects:
                del self._by_ns[namespace]
        elif current is None or is_newer(version, self._identity(current)[2]):
            self._by_ns.setdefault(namespace, {})[name] = item
            self._count += current is None
        else:
            return
        notify(self._subscribers, namespace)

    def _apply_list(self, scope: WatchScope, items: list[T], now: float) -> None:
        """A list is the whole truth of its scope at its resourceVersion, newer than any
        event of the watch it replaces: the scope's objects become exactly these."""
        listed: dict[str, dict[str, T]] = {}
        for item in items:
            namespace, name, _version = self._identity(item)
            listed.setdefault(namespace, {})[name] = item
        replaced = [scope] if scope is not None else list(self._by_ns)
        changed = set(listed) | {ns for ns in replaced if ns in self._by_ns}
        for namespace in replaced:
            self._count -= len(self._by_ns.pop(namespace, {}))
        for namespace, objects in listed.items():
            self._by_ns[namespace] = objects
            self._count += len(objects)
        for namespace in sorted(changed):
            notify(self._subscribers, namespace)

    def _sizes(self) -> dict[str, int]:
        return {"live": self._count}
