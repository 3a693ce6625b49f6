"""The reflector: one list+watch per served namespace (or one cluster-wide), each in its own
thread, because the official client blocks. A thread parses every event once into an
``Entry`` and hands it to the event loop; a 410 Gone relists at once, any other failure
relists after a jittered, growing backoff, and the scope reads unhealthy meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from service.cache.entries import Entry, make_entry
from service.config import Settings
from service.core.errors import GatewayError, KruiseMissing, KubeError, KubeGone
from service.kube.port import KubeAPI, WatchStream
from service.metrics import Metrics

log = logging.getLogger(__name__)

WatchScope = str | None  # a namespace, or None for every namespace


class ReflectorSink(Protocol):
    """Where the reflector's news goes; every call runs on the event loop."""

    def apply_list(self, scope: WatchScope, entries: list[Entry], now: float) -> None: ...

    def apply_event(self, kind: str, entry: Entry) -> None: ...

    def set_unhealthy(self, scope: WatchScope, error: str, since: datetime) -> None: ...


class _Stopped(Exception):
    pass


class Reflector:
    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        sink: ReflectorSink,
        scopes: Sequence[WatchScope],
        *,
        clock: Callable[[], float],
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._metrics = metrics
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
                name=f"crr-watch-{scope or 'all'}",
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
        backoff = self._settings.relist_backoff_initial_seconds
        first = True
        while not self._stop.is_set():
            reason = "error"
            try:
                resource_version = self._list(scope, refresh=not first)
                first = False
                backoff = self._settings.relist_backoff_initial_seconds
                self._watch(scope, resource_version)
            except _Stopped:
                return
            except KubeGone:
                reason = "expired"
                log.info("watch of CRRs in %s expired; relisting", label)
                self._metrics.watch_restarts.labels(label, reason).inc()
                continue  # relist at once: the apiserver is fine
            except Exception as e:
                if self._stop.is_set():
                    return
                reason = "kruise-missing" if isinstance(e, KruiseMissing) else "error"
                message = e.detail if isinstance(e, GatewayError) else f"{type(e).__name__}: {e}"
                if not isinstance(e, KubeError | KruiseMissing):
                    log.exception("watch of CRRs in %s failed", label)
                else:
                    log.warning("watch of CRRs in %s failed: %s", label, message)
                with contextlib.suppress(_Stopped):
                    self._post(self._sink.set_unhealthy, scope, message, datetime.now(UTC))
                self._metrics.watch_restarts.labels(label, reason).inc()
            jitter = random.uniform(0.8, 1.2)
            if self._stop.wait(backoff * jitter):
                return
            backoff = min(backoff * 2, self._settings.relist_backoff_max_seconds)

    def _list(self, scope: WatchScope, *, refresh: bool) -> str:
        self._kube.crr_version(refresh=refresh)
        result = self._kube.list_crrs(scope)
        entries = [make_entry(item) for item in result.items]
        self._post(self._sink.apply_list, scope, entries, self._clock())
        return result.resource_version

    def _watch(self, scope: WatchScope, resource_version: str) -> None:
        """Watch until the stream breaks; a clean end (server timeout) re-watches from the
        last version seen. Raises on errors so the caller relists."""
        while not self._stop.is_set():
            timeout = int(self._settings.watch_timeout_seconds * random.uniform(0.9, 1.0)) or 1
            stream = self._kube.watch_crrs(scope, resource_version, timeout_seconds=timeout)
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
        entry = make_entry(obj, deleted_at=self._clock() if kind == "DELETED" else None)
        self._post(self._sink.apply_event, str(kind), entry)
        return new_version or resource_version
