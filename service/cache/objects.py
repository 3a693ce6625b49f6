"""A watch cache of plain objects by namespace and name, each trimmed to what the service reads
(pods, disruption budgets). Unlike restarts and rollouts, a deleted object simply goes: nobody
asks about it afterwards. Subscribers hear which namespace changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from service.cache.reflector import WatchSource
from service.cache.scopes import WatchScope
from service.cache.watched import WatchedStore, notify
from service.config import Settings
from service.core.objects import KubeObject, metadata
from service.core.reading import is_newer
from service.metrics import Metrics

Trim = Callable[[KubeObject], KubeObject]


def _name(obj: KubeObject) -> str:
    return str(metadata(obj).get("name", ""))


def _namespace(obj: KubeObject) -> str:
    return str(metadata(obj).get("namespace", ""))


def _version(obj: KubeObject) -> str:
    return str(metadata(obj).get("resourceVersion", ""))


class ObjectStore(WatchedStore[KubeObject]):
    """The objects are shared with every reader: read them, never change them."""

    def __init__(
        self,
        source: WatchSource,
        trim: Trim,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(source, lambda obj, _deleted_at: trim(obj), settings, metrics, clock=clock)
        self._by_ns: dict[str, dict[str, KubeObject]] = {}
        self._subscribers: list[Callable[[str], None]] = []
        self._count = 0

    # ---------------------------------------------------------------- reads (event loop)

    def get(self, namespace: str, name: str) -> KubeObject | None:
        return self._by_ns.get(namespace, {}).get(name)

    def in_namespace(self, namespace: str) -> list[KubeObject]:
        """A namespace's objects sorted by name."""
        objects = self._by_ns.get(namespace, {})
        return [objects[name] for name in sorted(objects)]

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(namespace)`` on the event loop after every change in a namespace
        (once per namespace for a relist). It must not block."""
        self._subscribers.append(callback)

    def objects(self) -> Iterable[KubeObject]:
        """Every object held (for tests and metrics)."""
        for objects in self._by_ns.values():
            yield from objects.values()

    # ---------------------------------------------------------------- writes (event loop)

    def _apply_event(self, kind: str, item: KubeObject) -> None:
        namespace, name = _namespace(item), _name(item)
        current = self._by_ns.get(namespace, {}).get(name)
        if kind == "DELETED":
            if current is None or is_newer(_version(current), _version(item)):
                return
            objects = self._by_ns[namespace]
            del objects[name]
            self._count -= 1
            if not objects:
                del self._by_ns[namespace]
        elif current is None or is_newer(_version(item), _version(current)):
            self._by_ns.setdefault(namespace, {})[name] = item
            self._count += current is None
        else:
            return
        notify(self._subscribers, namespace)

    def _apply_list(self, scope: WatchScope, items: list[KubeObject], now: float) -> None:
        """A list is the whole truth of its scope at its resourceVersion, newer than any
        event of the watch it replaces: the scope's objects become exactly these."""
        listed: dict[str, dict[str, KubeObject]] = {}
        for item in items:
            listed.setdefault(_namespace(item), {})[_name(item)] = item
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
