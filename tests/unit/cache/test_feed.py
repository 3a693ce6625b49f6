"""The change feed of a watch cache (``service.cache.feed``): every change of a namespace
numbered with the entry before and after it, the backlog a token can resume from, waking
followers, and nothing recorded for tombstones of objects never seen live."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.cache.entries import Entry
from service.cache.feed import ChangeFeed
from service.cache.store import RestartCache
from service.config import Settings
from service.metrics import Metrics
from tests.support.clock import ManualClock
from tests.support.crrs import watched_crr
from tests.support.fake_kube import FakeKube


def run(body: Callable[[RestartCache, ChangeFeed[Entry]], Awaitable[None]], **kw: Any) -> None:
    """A restart cache serving ``ns`` (fed by hand through ``observe``) and its feed."""

    async def main() -> None:
        cache = RestartCache(
            FakeKube(), Settings(namespaces=["ns"]), Metrics(), clock=ManualClock(1000.0)
        )
        await body(cache, ChangeFeed(cache, backlog=kw.get("backlog", 100)))

    asyncio.run(main())


def test_changes_are_numbered_with_the_entry_before_and_after() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        cache.observe(watched_crr("a", 10))
        cache.observe(watched_crr("a", 11, completed=True))
        cache.observe(watched_crr("a", 11, completed=True))  # the same version again: no change
        cache.observe_deleted(watched_crr("a", 12, completed=True))
        log = feed.log("ns")
        changes = log.after(0)
        assert changes is not None
        assert [c.seq for c in changes] == [1, 2, 3]
        first, second, third = changes
        assert first.previous is None and first.current is not None
        assert first.current.restart.resourceVersion == "10"
        assert second.previous is first.current
        assert second.current is not None and second.current.restart.finished
        assert third.previous is second.current and third.gone
        assert third.last_state.restart.resourceVersion == "12"
        assert log.live == {}
        assert log.after(2) == [third] and log.after(3) == []

    run(body)


def test_a_tombstone_of_an_object_never_seen_live_is_no_change() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        cache.observe_deleted(watched_crr("ghost", 5))
        assert feed.log("ns").seq == 0

    run(body)


def test_the_live_objects_are_the_caches_by_name() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        for name, rv in (("c", 3), ("a", 1), ("b", 2)):
            cache.observe(watched_crr(name, rv))
        cache.observe_deleted(watched_crr("b", 4))
        assert [e.restart.name for e in feed.log("ns").snapshot()] == ["a", "c"]
        assert [e.restart.name for e in cache.in_namespace("ns") if e.deleted_at is None] == [
            "a",
            "c",
        ]

    run(body)


def test_a_feed_built_after_the_cache_filled_starts_from_its_live_objects() -> None:
    async def main() -> None:
        cache = RestartCache(FakeKube(), Settings(namespaces=["ns"]), Metrics())
        cache.observe(watched_crr("a", 1))
        feed = ChangeFeed(cache, backlog=10)
        assert [e.restart.name for e in feed.log("ns").snapshot()] == ["a"]
        cache.observe(watched_crr("a", 2))
        changes = feed.log("ns").after(0)
        assert changes is not None and changes[0].previous is not None

    asyncio.run(main())


@pytest.mark.parametrize("seq", [0, 1])
def test_changes_older_than_the_backlog_cannot_be_resumed(seq: int) -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        for rv in range(1, 6):
            cache.observe(watched_crr("a", rv))
        log = feed.log("ns")
        assert log.seq == 5
        assert not log.can_resume(seq) and log.after(seq) is None

    run(body, backlog=3)


def test_the_backlog_resumes_from_just_before_its_oldest_change() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        for rv in range(1, 6):
            cache.observe(watched_crr("a", rv))
        log = feed.log("ns")
        changes = log.after(2)
        assert changes is not None and [c.seq for c in changes] == [3, 4, 5]
        assert not log.can_resume(6)  # a change this log never made

    run(body, backlog=3)


def test_a_change_wakes_the_followers_and_draining_wakes_them_all() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        log = feed.log("ns")
        waiter = asyncio.create_task(log.wait(0, 30))
        await asyncio.sleep(0)
        cache.observe(watched_crr("a", 1))
        assert await waiter is True
        assert await log.wait(0, 30) is True  # already past it: no wait
        assert await log.wait(1, 0.01) is False  # nothing new: times out

        drained = asyncio.create_task(log.wait(1, 30))
        await asyncio.sleep(0)
        feed.drain()
        assert await drained is True and feed.draining

    run(body)


def test_namespaces_have_logs_of_their_own() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        cache.observe(watched_crr("a", 1))
        other = feed.log("other")
        assert other.seq == 0 and other.id != feed.log("ns").id

    run(body)
