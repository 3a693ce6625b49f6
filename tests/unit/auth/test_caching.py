"""The review cache: entries expire, each with its own TTL, and the cache stays bounded."""

from __future__ import annotations

from service.auth.caching import TTLCache
from tests.support.clock import ManualClock


def test_ttl_cache_expires_and_stays_bounded() -> None:
    clock = ManualClock(100.0)
    cache: TTLCache[str, int] = TTLCache(2, clock=clock)
    cache.put("a", 1, 5)
    cache.put("b", 2, 1)
    assert cache.get("a") == (True, 1)
    clock.now += 2
    assert cache.get("b") == (False, None)
    cache.put("c", 3, 5)
    cache.put("d", 4, 5)  # "a" is the least recently used: dropped
    assert len(cache) == 2 and cache.get("a") == (False, None)
    cache.put("e", 5, 0)  # a zero TTL stores nothing
    assert cache.get("e") == (False, None)
