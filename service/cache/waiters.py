"""Long polls and event streams waiting for a change of one cached object (a key), cheaply
enough for ten thousand followers of one object on one process (BENCHMARKS.md, "Followers").

Each wait is one future in its key's set. A change resolves every future of the key in one
pass; each wait's deadline (a long poll's ``wait``, a stream's heartbeat) sits in one heap
served by one timer for the whole store. ``asyncio.timeout`` (or ``wait_for``) would give every
wait a timer handle of its own, made and cancelled again on every change, on top of the
future; ``asyncio.Event`` a future per waiter as well as its own bookkeeping.

Everything runs on the event loop."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

Deadline = tuple[float, int, "asyncio.Future[bool]"]  # (when, tie-break, the wait)


class Waiters:
    """The waits of a store, by key."""

    def __init__(self) -> None:
        self._by_key: dict[Hashable, dict[asyncio.Future[bool], Callable[[], None] | None]] = {}
        self._deadlines: list[Deadline] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._settled = 0  # deadlines in the heap whose wait already ended

    def __contains__(self, key: Hashable) -> bool:
        """Whether anyone waits for ``key`` now."""
        return bool(self._by_key.get(key))

    async def wait(
        self, key: Hashable, timeout: float, on_wake: Callable[[], None] | None = None
    ) -> bool:
        """Return when :meth:`wake` is called for ``key`` (or all): True; or after ``timeout``:
        False. ``on_wake`` is called in the wake itself, before any waiting task resumes."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._by_key.setdefault(key, {})[waiter] = on_wake
        if self._timer_loop is not loop and self._timer_loop is not None:  # a new loop (tests)
            self._deadlines = [d for d in self._deadlines if d[2].get_loop() is loop]
            heapq.heapify(self._deadlines)
            self._timer_loop = None
        deadline = loop.time() + timeout
        heapq.heappush(self._deadlines, (deadline, next(self._order), waiter))
        if deadline < self._timer_at or self._timer_loop is None:
            self._arm(loop, deadline)
        try:
            return await waiter
        finally:
            if not waiter.done():  # cancelled while waiting: leave no trace in the key's set
                waiter.cancel()
            waiting = self._by_key.get(key)
            if waiting is not None:
                waiting.pop(waiter, None)
                if not waiting:
                    del self._by_key[key]

    def wake(self, key: Hashable) -> None:
        """End every wait for ``key`` (it changed)."""
        waiting = self._by_key.pop(key, None)
        if waiting:
            self._end(waiting)

    def wake_all(self) -> None:
        """End every wait (the store stops or drains)."""
        everyone, self._by_key = self._by_key, {}
        for waiting in everyone.values():
            self._end(waiting)

    def _end(self, waiting: dict[asyncio.Future[bool], Callable[[], None] | None]) -> None:
        for waiter, on_wake in waiting.items():
            if not waiter.done():
                if on_wake is not None:
                    try:
                        on_wake()
                    except Exception:  # its task still resumes, and answers
                        log.exception("a wake callback failed")
                waiter.set_result(True)
        # their deadlines stay in the heap until due; rebuild it once most are such leftovers,
        # so that a busy object's followers (a wait per change each) cannot grow it for ever
        self._settled += len(waiting)
        if self._settled > 1024 and self._settled > len(self._deadlines) // 2:
            self._deadlines = [d for d in self._deadlines if not d[2].done()]
            heapq.heapify(self._deadlines)
            self._settled = 0

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire, loop)
        self._timer_at, self._timer_loop = when, loop

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now = loop.time()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, waiter = heapq.heappop(deadlines)
            if waiter.done():
                self._settled = max(0, self._settled - 1)
            else:
                waiter.set_result(False)  # its wait removes it from the key's set
        if deadlines:
            self._arm(loop, deadlines[0][0])
