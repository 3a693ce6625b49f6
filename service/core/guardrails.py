"""Guardrails: a per-caller token bucket and a per-namespace cap on active restarts.

Both are per replica and in memory: with N replicas behind a Service a caller gets up to N
times the rate, and the active cap is counted from this replica's watch cache (which every
replica fills from the same apiserver, so it lags a create on another replica by the watch
latency). Both are guardrails against runaway callers, not quotas.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

from service.core.errors import ActiveRestartsCapped, RateLimited

ACTIVE_CAP_RETRY_AFTER_SECONDS = 5


class RateLimiter:
    """Token buckets by caller name: ``rate`` tokens a second up to ``burst``. At most
    ``max_callers`` buckets are kept (least recently used dropped; a dropped bucket comes
    back full). Used from the event loop only."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def take(self, caller: str) -> None:
        """Spend one token of ``caller``'s bucket, or raise ``RateLimited`` (429)."""
        if not self.enabled:
            return
        now = self._clock()
        tokens, at = self._buckets.get(caller, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            self._buckets.move_to_end(caller)
            wait = math.ceil((1.0 - tokens) / self._rate)
            raise RateLimited(
                f"{caller} exceeded {self._rate:g} requests per second (burst "
                f"{self._burst:g}); retry in {wait}s",
                retry_after=wait,
            )
        self._buckets[caller] = (tokens - 1.0, now)
        self._buckets.move_to_end(caller)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


class Finishing(Protocol):
    """A restart, or anything that says whether one has finished (the cache's entries)."""

    @property
    def finished(self) -> bool: ...


def check_active_cap(namespace: str, restarts: Iterable[Finishing], cap: int) -> None:
    """Refuse a new restart when ``namespace`` already has ``cap`` unfinished ones."""
    if cap <= 0:
        return
    active = sum(1 for r in restarts if not r.finished)
    if active >= cap:
        raise ActiveRestartsCapped(
            f"namespace {namespace} has {active} unfinished restarts (the cap is {cap}); "
            "retry when some have finished",
            retry_after=ACTIVE_CAP_RETRY_AFTER_SECONDS,
            extra={"activeRestarts": active, "maxActiveRestarts": cap},
        )
