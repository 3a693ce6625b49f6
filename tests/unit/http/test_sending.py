"""Sending from a callback (``service.http.sending``): a send that does not wait is done on
the spot; one that waits has sent nothing yet and finishes, once, when the caller's task
awaits the rest; a task cancelled meanwhile cancels the send; an awaitable that is not a
coroutine is left for the task, unrun."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from starlette.types import Message

from service.http.sending import send_now

END: Message = {"type": "http.response.body", "body": b"last", "more_body": False}


class Receiver:
    """An ASGI send that, like a server's, waits for a drained socket before it writes."""

    def __init__(self, *, drained: bool) -> None:
        self.sent: list[Message] = []
        self.drained = asyncio.Event()
        if drained:
            self.drained.set()
        self.gave_up = False

    async def send(self, message: Message) -> None:
        try:
            await self.drained.wait()
        except asyncio.CancelledError:
            self.gave_up = True
            raise
        self.sent.append(message)


def test_a_send_that_does_not_wait_is_done_on_the_spot() -> None:
    async def main() -> None:
        receiver = Receiver(drained=True)
        assert send_now(receiver.send, END) is None
        assert receiver.sent == [END]

    asyncio.run(main())


def test_a_send_that_waits_finishes_once_in_the_task_that_awaits_the_rest() -> None:
    async def main() -> None:
        receiver = Receiver(drained=False)
        rest = send_now(receiver.send, END)
        assert rest is not None and receiver.sent == []
        finishing = asyncio.create_task(_await(rest))
        await asyncio.sleep(0.01)
        assert not finishing.done() and receiver.sent == []
        receiver.drained.set()
        await asyncio.wait_for(finishing, 5)
        assert receiver.sent == [END]

    asyncio.run(main())


def test_a_task_cancelled_while_the_send_waits_cancels_the_send() -> None:
    async def main() -> None:
        receiver = Receiver(drained=False)
        rest = send_now(receiver.send, END)
        assert rest is not None
        finishing = asyncio.create_task(_await(rest))
        await asyncio.sleep(0.01)
        finishing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await finishing
        assert receiver.gave_up and receiver.sent == []

    asyncio.run(main())


def test_an_awaitable_that_is_not_a_coroutine_is_left_to_the_task() -> None:
    async def main() -> None:
        pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def send(message: Message) -> asyncio.Future[None]:
            return pending

        assert send_now(send, END) is pending

    asyncio.run(main())


async def _await(rest: Awaitable[None]) -> None:
    await rest
