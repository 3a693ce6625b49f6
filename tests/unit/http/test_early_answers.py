"""A long poll answered from the store's wake (``service.http.fast_reads._EarlyAnswer``): only
a change that ends the poll is answered there; a client too slow to take the answer at once
gets its head and body once each, in order, from the poll's own task; and a wake after the
answer sends nothing more."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.types import Message

from service.http.fast_reads import RESTARTS, _EarlyAnswer, _Hit


@dataclass
class Restart:
    resource_version: str
    finished: bool
    body: bytes


class Store:
    """What a long poll reads of a cache: one restart, changed by the test."""

    draining = False

    def __init__(self, entry: Restart) -> None:
        self.entry = entry

    def stale_since(self, namespace: str) -> datetime | None:
        return None

    def get(self, namespace: str, name: str) -> Restart | None:
        return self.entry

    async def wait_change(self, *args: Any) -> None:
        raise AssertionError("not waited on here")


class Client:
    """An ASGI send; with ``drained`` clear it waits before writing, as a server's does."""

    def __init__(self, *, drained: bool) -> None:
        self.sent: list[Message] = []
        self.drained = asyncio.Event()
        if drained:
            self.drained.set()

    async def send(self, message: Message) -> None:
        await self.drained.wait()
        self.sent.append(message)


def _poll(store: Store, client: Client) -> _EarlyAnswer:
    hit = _Hit("restarts", RESTARTS, store, "ns", "r", store.entry, 30, "7", "req-1")
    return _EarlyAnswer(hit, client.send)


def test_only_a_change_that_ends_the_poll_is_answered_from_the_wake() -> None:
    async def main() -> None:
        store, client = Store(Restart("7", False, b'{"v":7}')), Client(drained=True)
        poll = _poll(store, client)
        poll.on_change()  # woken, but still at the version the client has
        assert client.sent == [] and poll.started_at is None
        store.entry = Restart("8", False, b'{"v":8}')
        poll.on_change()
        assert poll.started_at is not None and poll.rest is None
        start, body = client.sent
        assert start["status"] == 200
        assert (b"x-request-id", b"req-1") in start["headers"]
        assert body["body"] == b'{"v":8}'
        store.entry = Restart("9", True, b'{"v":9}')
        poll.on_change()  # answered already: nothing more
        await poll.finish()
        assert len(client.sent) == 2

    asyncio.run(main())


def test_a_slow_client_gets_head_and_body_once_each_from_the_polls_task() -> None:
    async def main() -> None:
        store, client = Store(Restart("7", False, b'{"v":7}')), Client(drained=False)
        poll = _poll(store, client)
        store.entry = Restart("8", True, b'{"v":8}')
        poll.on_change()
        assert poll.started_at is not None and client.sent == []
        finishing = asyncio.create_task(poll.finish())
        await asyncio.sleep(0.01)
        assert not finishing.done() and client.sent == []
        client.drained.set()
        await asyncio.wait_for(finishing, 5)
        assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
        assert client.sent[1]["body"] == b'{"v":8}'

    asyncio.run(main())
