"""Plumbing for the node agents: raw JSON responses, a delaying work queue, retry backoff and a
list-then-watch reflector (small cousins of client-go's workqueue and Reflector).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.simulator.objects import REQUEST_TIMEOUT, WATCH_TIMEOUT_SECONDS, Obj, meta

log = logging.getLogger(__name__)


def raw_json(response: Any) -> Any:
    """Read a ``_preload_content=False`` response (skips the client's slow, fragile models)."""
    try:
        data = response.data
    finally:
        response.release_conn()
    return json.loads(data) if data else None


def is_status(error: BaseException, *codes: int) -> bool:
    return isinstance(error, ApiException) and error.status in codes


class WorkQueue:
    """A de-duplicating delay queue of string keys (a small client-go delaying work queue).

    As client-go's, a key handed out by :meth:`get` is not handed out again until :meth:`done`
    is called for it, so several workers never sync the same key at once; an add meanwhile is
    kept and takes effect after ``done``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}  # scheduled keys (in the heap or deferred)
        self._processing: set[str] = set()
        self._deferred: set[str] = set()  # due while being processed
        self._seq = itertools.count()
        self._closed = False

    def add(self, key: str, delay: float = 0.0) -> None:
        due = time.monotonic() + max(delay, 0.0)
        with self._cond:
            if self._closed or self._due.get(key, math.inf) <= due:
                return
            self._due[key] = due
            if key not in self._deferred:
                heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify()

    def get(self, timeout: float) -> str | None:
        """The next due key, or None after ``timeout`` seconds or once closed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap:
                    due, _, key = self._heap[0]
                    if self._due.get(key) != due or key in self._deferred:
                        heapq.heappop(self._heap)  # superseded by an earlier add
                    elif due <= now and key in self._processing:
                        heapq.heappop(self._heap)
                        self._deferred.add(key)
                    else:
                        break
                if self._heap and self._heap[0][0] <= now:
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    self._processing.add(key)
                    return key
                if now >= deadline:
                    return None
                wake = min(self._heap[0][0] if self._heap else math.inf, deadline)
                self._cond.wait(wake - now)
            return None

    def done(self, key: str) -> None:
        """The worker is finished with ``key``: an add that came meanwhile is due again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._deferred:
                self._deferred.discard(key)
                heapq.heappush(self._heap, (self._due[key], next(self._seq), key))
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class RateLimiter:
    """workqueue.ItemExponentialFailureRateLimiter: per key, ``base`` doubling on each failure
    up to ``limit``; :meth:`forget` after a success starts the key over."""

    def __init__(self, base: float, limit: float) -> None:
        self._base, self._limit = base, limit
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        """The delay before retrying ``key`` after one more failure."""
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        return min(self._base * 2.0 ** min(failures, 64), self._limit)

    def failures(self, key: str) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class Backoff:
    """Exponential retry delay that logs the first failure of a streak only."""

    def __init__(self, what: str, first: float = 0.2, limit: float = 5.0) -> None:
        self._what, self._first, self._limit = what, first, limit
        self._delay = first
        self._failing = False

    def failed(self, error: BaseException) -> float:
        if not self._failing:
            log.warning("%s failing, retrying with backoff: %s", self._what, error)
        else:
            log.debug("%s still failing: %s", self._what, error)
        self._failing = True
        delay = self._delay
        self._delay = min(self._delay * 2, self._limit)
        return delay

    def succeeded(self) -> None:
        if self._failing:
            log.info("%s recovered", self._what)
        self._failing = False
        self._delay = self._first


def iter_lines(response: Any) -> Iterator[str]:
    """Newline-delimited JSON lines of a streaming watch response."""
    buffer = bytearray()
    for chunk in response.stream(amt=None, decode_content=False):
        buffer.extend(chunk)
        while (end := buffer.find(b"\n")) != -1:
            line = bytes(buffer[:end]).decode("utf-8", errors="replace")
            del buffer[: end + 1]
            if line.strip():
                yield line


class Reflector:
    """List a collection, then watch it from the list's resourceVersion, forever.

    A normal end of a watch (``timeout_seconds``) resumes from the last resourceVersion; a 410 or
    an ERROR event relists at once; anything else (apiserver down, broken stream) relists after
    a backoff. Never raises; :meth:`stop` interrupts a blocked read at once.
    """

    def __init__(
        self,
        what: str,
        list_call: Callable[..., Any],
        on_list: Callable[[list[Obj]], None],
        on_event: Callable[[str, Obj], None],
        stop: threading.Event,
        label_selector: str | None = None,
    ) -> None:
        self._what = what
        self._list_call = list_call
        self._on_list = on_list
        self._on_event = on_event
        self._stop = stop
        self._selector: dict[str, str] = (
            {"label_selector": label_selector} if label_selector else {}
        )
        self._lock = threading.Lock()
        self._response: Any = None

    def run(self) -> None:
        backoff = Backoff(f"list/watch of {self._what}")
        while not self._stop.is_set():
            try:
                version = self._list()
                backoff.succeeded()
                while not self._stop.is_set():
                    version = self._watch(version)
            except _Gone:
                log.debug("watch of %s expired; relisting", self._what)
            except Exception as error:
                if self._stop.is_set():
                    break
                if is_status(error, 410):
                    continue
                self._stop.wait(backoff.failed(error))

    def stop(self) -> None:
        """Call after setting the stop event: unblocks a watch that is waiting for data."""
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def _list(self) -> str:
        listed = raw_json(
            self._list_call(
                **self._selector, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        )
        self._on_list(list(listed.get("items") or []))
        return str(meta(listed).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        response = self._list_call(
            **self._selector,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_SECONDS,
            _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT[0], WATCH_TIMEOUT_SECONDS * 2.0),
        )
        with self._lock:
            self._response = response
        try:
            if self._stop.is_set():
                return version
            for line in iter_lines(response):
                version = self._handle(json.loads(line), version)
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._response = None
            response.close()
            response.release_conn()
        return version

    def _handle(self, event: Obj, version: str) -> str:
        kind = event.get("type")
        obj: Obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise RuntimeError(f"watch error: {obj.get('reason')}: {obj.get('message')}")
        if kind != "BOOKMARK":
            self._on_event(str(kind), obj)
        return str(meta(obj).get("resourceVersion") or version)
