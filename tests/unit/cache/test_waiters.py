"""The waits of long polls and event streams (``service.cache.waiters``): a change ends every
wait of its key and no other, each wait ends at its own deadline, a cancelled wait leaves no
trace, and leftovers of ended waits do not pile up."""

from __future__ import annotations

import asyncio

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
