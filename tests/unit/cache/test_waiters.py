"""The waits of long polls and event streams (``service.cache.waiters``): a change ends every
wait of its key and no other, each wait ends at its own deadline, a cancelled wait leaves no
trace, and leftovers of ended waits do not pile up. A wait's callback runs in the wake itself,
before any waiting task resumes, and only on a change; one that fails costs its wait nothing."""

from __future__ import annotations

import asyncio
import logging

import pytest

from service.cache.waiters import Waiters


def test_a_change_ends_every_wait_of_its_key_and_no_other() -> None:
    async def main() -> None:
        waiters = Waiters()
        mine = [asyncio.create_task(waiters.wait("a", 60)) for _ in range(1000)]
        other = asyncio.create_task(waiters.wait("b", 60))
        await asyncio.sleep(0)
        assert "a" in waiters and "b" in waiters
        waiters.wake("a")
        assert await asyncio.gather(*mine) == [True] * 1000
        assert "a" not in waiters
        assert not other.done()
        waiters.wake_all()
        assert await other is True
        assert "b" not in waiters

    asyncio.run(main())


def test_each_wait_ends_at_its_own_deadline() -> None:
    async def main() -> None:
        waiters = Waiters()
        short = asyncio.create_task(waiters.wait("a", 0.01))
        long = asyncio.create_task(waiters.wait("a", 60))
        assert await short is False  # the deadline, not a change
        assert not long.done()
        assert "a" in waiters  # the long one still waits
        waiters.wake("a")
        assert await long is True

    asyncio.run(main())


def test_a_cancelled_wait_leaves_no_trace() -> None:
    async def main() -> None:
        waiters = Waiters()
        waiting = asyncio.create_task(waiters.wait("a", 60))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert "a" not in waiters
        waiters.wake("a")  # nothing to wake, nothing breaks

    asyncio.run(main())


def test_waits_ended_by_changes_do_not_pile_up() -> None:
    async def main() -> None:
        waiters = Waiters()
        for _ in range(20):  # a busy object: every change ends 500 waits of 60 s
            batch = [asyncio.create_task(waiters.wait("a", 60)) for _ in range(500)]
            await asyncio.sleep(0)
            waiters.wake("a")
            await asyncio.gather(*batch)
        assert len(waiters._deadlines) <= 2 * 1024
        late = asyncio.create_task(waiters.wait("a", 0.01))  # deadlines still served
        assert await late is False

    asyncio.run(main())


def test_callbacks_run_in_the_wake_before_any_waiting_task_resumes() -> None:
    async def main() -> None:
        waiters = Waiters()
        called: list[int] = []
        resumed: list[int] = []

        async def wait(i: int) -> bool:
            woken = await waiters.wait("a", 60, lambda: called.append(i))
            resumed.append(i)
            return woken

        tasks = [asyncio.create_task(wait(i)) for i in range(100)]
        await asyncio.sleep(0)
        waiters.wake("a")
        assert called == list(range(100)) and resumed == []  # all of them, in the wake itself
        assert await asyncio.gather(*tasks) == [True] * 100
        assert sorted(resumed) == list(range(100))

    asyncio.run(main())


def test_a_callback_runs_only_on_a_change_and_one_that_fails_costs_its_wait_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fail() -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        waiters = Waiters()
        called: list[str] = []
        timed_out = await waiters.wait("a", 0.01, lambda: called.append("timeout"))
        assert timed_out is False and called == []
        failing = asyncio.create_task(waiters.wait("a", 60, fail))
        other = asyncio.create_task(waiters.wait("a", 60, lambda: called.append("other")))
        await asyncio.sleep(0)
        waiters.wake("a")
        assert await failing is True and await other is True
        assert called == ["other"]

    with caplog.at_level(logging.ERROR, logger="service.cache.waiters"):
        asyncio.run(main())
    assert "a wake callback failed" in caplog.text
