"""The reflector: one list+watch of a source per served namespace (or one cluster-wide), each
in its own thread, because the official client blocks. A thread decodes every object once
(the store's ``decode``: an entry, a pod record...) and hands it to the event loop; a 410
Gone relists at once, any other failure relists after a jittered, growing backoff, and the
scope reads unhealthy meanwhile. A source whose resource the cluster does not serve (an
optional one, such as OpenKruise's PodUnavailableBudgets) reads as empty and is looked at
again from time to time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from service.cache.scopes import WatchScope
from service.config import Settings
from service.core.errors import GatewayError, KruiseMissing, KubeError, KubeGone
from service.core.objects import KubeObject
from service.kube.port import ListResult, WatchStream

log = logging.getLogger(__name__)

T = TypeVar("T")


class NotServed(Exception):
    """Raised by a source's ``list`` when the cluster does not serve its (optional)
    resource: the scope then holds nothing, and is listed again later."""


class WatchSource(Protocol):
    """What a reflector lists and watches. Both calls block (they run in its threads)."""

    @property
    def name(self) -> str:
        """Names the source in thread names, log lines and metric labels."""
        ...

    def list(self, scope: WatchScope, *, relist: bool) -> ListResult:
        """Everything in ``scope``; ``relist`` is False for the first list of the scope."""
        ...

    def watch(
        self, scope: WatchScope, resource_version: str, *, timeout_seconds: int
    ) -> WatchStream: ...


Decode = Callable[[KubeObject, float | None], T]
"""An object off the wire, and the (monotonic) time it was seen deleted, to what the store
keeps. Runs in the reflector's threads, so the event loop never parses."""


class ReflectorSink(Protocol[T]):
    """Where the reflector's news goes; every call runs on the event loop."""

    def apply_list(self, scope: WatchScope, items: list[T], now: float) -> None: ...

    def apply_event(self, kind: str, item: T) -> None: ...

    def set_unhealthy(self, scope: WatchScope, error: str, since: datetime) -> None: ...


class _Stopped(Exception):
    pass


class Reflector(Generic[T]):
    def __init__(
        self,
        source: WatchSource,
        decode: Decode[T],
        sink: ReflectorSink[T],
        scopes: Sequence[WatchScope],
        settings: Settings,
        *,
        clock: Callable[[], float],
        on_relist: Callable[[str, str], None],
    ) -> None:
        """``on_relist(scope label, reason)`` counts every restart of a list+watch; it is
        called from the reflector's threads."""
        self._source = source
        self._decode = decode
        self._settings = settings
        self._on_relist = on_relist
        self._sink = sink
        self._scopes = list(scopes)
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[WatchScope, WatchStream] = {}
        self._streams_lock = threading.Lock()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for scope in self._scopes:
            thread = threading.Thread(
                target=self._reflect,
                args=(scope,),
                name=f"watch-{self._source.name}-{scope or 'all'}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Tell the threads to stop and unblock their watches (see :meth:`join`)."""
        self._stop.set()
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()

    async def join(self) -> None:
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 5.0)
            if thread.is_alive():
                log.warning("watch thread %s did not stop in time", thread.name)

    # ---------------------------------------------------------------- in the threads

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        if self._stop.is_set() or self._loop is None:
            raise _Stopped
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError as e:  # the loop is closed
            raise _Stopped from e

    def _reflect(self, scope: WatchScope) -> None:
        label = scope or "*"
        what = f"watch of {self._source.name} in {label}"
        backoff = self._settings.relist_backoff_initial_seconds
        first = True
        while not self._stop.is_set():
            reason = "error"
            try:
                resource_version = self._list(scope, relist=not first)
                first = False
                backoff = self._settings.relist_backoff_initial_seconds
                self._watch(scope, resource_version)
            except _Stopped:
                return
            except NotServed as e:
                first = False
                log.info("%s: not served by the cluster (%s); holding none", what, e)
                with contextlib.suppress(_Stopped):
                    self._post(self._sink.apply_list, scope, [], self._clock())
                if self._stop.wait(self._settings.relist_backoff_max_seconds):
                    return
                continue  # look again: it may have been installed since
            except KubeGone:
                reason = "expired"
                log.info("%s expired; relisting", what)
                self._on_relist(label, reason)
                continue  # relist at once: the apiserver is fine
            except Exception as e:
                if self._stop.is_set():
                    return
                reason = "kruise-missing" if isinstance(e, KruiseMissing) else "error"
                message = e.detail if isinstance(e, GatewayError) else f"{type(e).__name__}: {e}"
                if not isinstance(e, KubeError | KruiseMissing):
                    log.exception("%s failed", what)
                else:
                    log.warning("%s failed: %s", what, message)
                with contextlib.suppress(_Stopped):
                    self._post(self._sink.set_unhealthy, scope, message, datetime.now(UTC))
                self._on_relist(label, reason)
            jitter = random.uniform(0.8, 1.2)
            if self._stop.wait(backoff * jitter):
                return
            backoff = min(backoff * 2, self._settings.relist_backoff_max_seconds)

    def _list(self, scope: WatchScope, *, relist: bool) -> str:
        result = self._source.list(scope, relist=relist)
        decoded = (self._read(item, None) for item in result.items)
        items = [item for item in decoded if item is not None]
        self._post(self._sink.apply_list, scope, items, self._clock())
        return result.resource_version

    def _watch(self, scope: WatchScope, resource_version: str) -> None:
        """Watch until the stream breaks; a clean end (server timeout) re-watches from the
        last version seen. Raises on errors so the caller relists."""
        while not self._stop.is_set():
            timeout = int(self._settings.watch_timeout_seconds * random.uniform(0.9, 1.0)) or 1
            stream = self._source.watch(scope, resource_version, timeout_seconds=timeout)
            with self._streams_lock:
                self._streams[scope] = stream
            if self._stop.is_set():
                stream.close()
                raise _Stopped
            try:
                for event in stream:
                    resource_version = self._handle(event, resource_version)
            finally:
                stream.close()
                with self._streams_lock:
                    self._streams.pop(scope, None)
            if self._stop.is_set():
                raise _Stopped

    def _handle(self, event: dict[str, object] | object, resource_version: str) -> str:
        if not isinstance(event, dict):
            raise KubeError("malformed watch event")
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            raise KubeError(f"malformed watch event of type {kind}")
        if kind == "ERROR":
            code = obj.get("code")
            message = str(obj.get("message") or "watch error")
            if code == 410 or obj.get("reason") in ("Expired", "Gone"):
                raise KubeGone(message, code=410)
            raise KubeError(f"watch error: {message}", code=code if isinstance(code, int) else 0)
        metadata = obj.get("metadata")
        new_version = (
            str(metadata.get("resourceVersion") or "") if isinstance(metadata, dict) else ""
        )
        if kind == "BOOKMARK":
            return new_version or resource_version
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            raise KubeError(f"unknown watch event type {kind}")
        item = self._read(obj, self._clock() if kind == "DELETED" else None)
        if item is not None:
            self._post(self._sink.apply_event, str(kind), item)
        return new_version or resource_version

    def _read(self, obj: KubeObject, deleted_at: float | None) -> T | None:
        """The decoded object; one the store cannot read (say, a hand-made custom resource
        that breaks its schema) is left out and logged, never a reason to relist forever."""
        try:
            return self._decode(obj, deleted_at)
        except Exception as e:
            meta = obj.get("metadata")
            where = f"{meta.get('namespace')}/{meta.get('name')}" if isinstance(meta, dict) else "?"
            log.warning("%s: left out %s, unreadable: %s", self._source.name, where, e)
            return None
