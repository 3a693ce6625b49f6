"""Reviews are cached briefly in bounded caches keyed by hashes (a token is never a key,
never logged), successes longer than failures, as Kubernetes' delegated authentication does;
concurrent misses for one key share one review."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A bounded LRU whose entries expire, each with its own TTL. Used from the event loop
    only (no locks)."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        hit = self._data.get(key)
        if hit is None:
            return False, None
        expires, value = hit
        if self._clock() >= expires:
            del self._data[key]
            return False, None
        self._data.move_to_end(key)
        return True, value

    def put(self, key: K, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        self._data[key] = (self._clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class SingleFlight(Generic[K, V]):
    """Concurrent misses for one key share one call: when a cached review expires under load,
    one review reaches the apiserver and the other requests await its answer."""

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[V]] = {}

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        task = self._calls.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # shielded: a caller that goes away does not cancel the review the others await
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every awaiter went away
