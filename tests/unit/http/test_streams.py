"""The event streams' response (``service.http.streams``) over a real restart cache fed by a
fake of our own ``KubeAPI`` port: a thousand followers of one restart each get every snapshot
and the same bytes, the finished one with the end of the response, sent from the cache's wake
(once, even to a client too slow to take it at once); a follower whose client leaves ends
without a word."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message

from service.cache.store import RestartCache
from service.config import Settings
from service.http.cached_reads import snapshots
from service.http.streams import EarlyEnd, EventStreamResponse
from service.metrics import Metrics
from tests.support.caches import until, watch_event
from tests.support.crrs import watched_crr
from tests.support.fake_kube import FakeKube

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Client:
    """One follower's side of ASGI: what was sent to it, and a disconnect it may announce;
    which task sent the end of the response."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.end_sent_by: asyncio.Task[Any] | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.end_sent_by = asyncio.current_task()
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.gone.set()  # as a server does: a complete response ends the receive side

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}


class SlowClient(Client):
    """A client that does not take the end of the response until ``reads`` is set: its send
    waits first, as a server's does for a full socket buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = asyncio.Event()
        self.end_waiting = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.end_waiting = True
            await self.reads.wait()
        await super().send(message)


def _follower(cache: RestartCache, client: Client) -> asyncio.Task[None]:
    """A follower as the routes make one (its body may end the stream from the wake)."""
    entry = cache.get("ns", "a")
    assert entry is not None
    early_end = EarlyEnd()
    stream = snapshots(
        cache,
        entry,
        "ns",
        "a",
        event="restart",
        last_event_id=None,
        heartbeat=60,
        version=lambda e: e.resource_version,
        finished=lambda e: e.finished,
        early_end=early_end,
    )
    response = EventStreamResponse(stream, headers=HEADERS, early_end=early_end)
    scope: dict[str, Any] = {"type": "http", "asgi": {"spec_version": "2.3"}}
    return asyncio.create_task(response(scope, client.receive, client.send))


def _run(body: Any) -> None:
    async def main() -> None:
        kube = FakeKube()
        kube.items = [watched_crr("a", 10)]
        cache = RestartCache(kube, Settings(namespaces=["ns"]), Metrics())
        await cache.start()
        try:
            await until(lambda: cache.ready)
            await body(kube, cache)
        finally:
            await cache.stop()

    asyncio.run(main())


def test_a_thousand_followers_get_every_snapshot_and_the_same_bytes() -> None:
    async def body(kube: FakeKube, cache: RestartCache) -> None:
        clients = [Client() for _ in range(1000)]
        followers = [_follower(cache, c) for c in clients]
        await until(lambda: ("ns", "a") in cache._waiters and all(c.sent for c in clients))
        kube.events.put(watch_event("MODIFIED", watched_crr("a", 11)))
        await until(lambda: all(len(c.sent) == 4 for c in clients))
        kube.events.put(watch_event("MODIFIED", watched_crr("a", 12, completed=True)))
        await asyncio.wait_for(asyncio.gather(*followers), 30)

        first = clients[0].sent
        assert all(c.sent == first for c in clients)
        start, retry, *snapshots_, end = first
        assert start["type"] == "http.response.start" and start["status"] == 200
        headers = dict(start["headers"])
        assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
        assert headers[b"cache-control"] == b"no-cache"
        assert retry["body"] == b"retry: 3000\n\n" and retry["more_body"] is True
        assert [s["body"].split(b"\n")[:2] for s in snapshots_] == [
            [b"event: restart", b"id: 10"],
            [b"event: restart", b"id: 11"],
        ]
        assert all(s["more_body"] is True for s in snapshots_)
        # the finished snapshot comes with the end of the response, in one message
        assert end["more_body"] is False
        assert end["body"].startswith(b"event: restart\nid: 12\ndata: {")
        assert b'"finished":true' in end["body"] and end["body"].endswith(b"}\n\n")

    _run(body)


def test_a_follower_whose_client_leaves_ends_quietly() -> None:
    async def body(kube: FakeKube, cache: RestartCache) -> None:
        client, staying = Client(), Client()
        leaving, other = _follower(cache, client), _follower(cache, staying)
        await until(lambda: ("ns", "a") in cache._waiters and bool(client.sent))
        client.gone.set()  # the client disconnects
        await asyncio.wait_for(leaving, 5)  # ended, without an error
        assert not leaving.cancelled()
        assert not any(m.get("more_body") is False for m in client.sent)
        assert not other.done()  # the other follower still follows
        kube.events.put(watch_event("MODIFIED", watched_crr("a", 11, completed=True)))
        await asyncio.wait_for(other, 5)
        assert staying.sent[-1]["more_body"] is False

    _run(body)


def test_the_finished_snapshot_is_sent_from_the_wake_not_each_followers_task() -> None:
    async def body(kube: FakeKube, cache: RestartCache) -> None:
        clients = [Client() for _ in range(100)]
        followers = [_follower(cache, c) for c in clients]
        await until(lambda: ("ns", "a") in cache._waiters and all(c.sent for c in clients))
        kube.events.put(watch_event("MODIFIED", watched_crr("a", 11, completed=True)))
        await asyncio.wait_for(asyncio.gather(*followers), 30)
        for client, follower in zip(clients, followers, strict=True):
            ends = [m for m in client.sent if m.get("more_body") is False]
            assert len(ends) == 1 and ends[0]["body"].startswith(b"event: restart\nid: 11\n")
            assert client.end_sent_by is not follower

    _run(body)


def test_a_client_too_slow_for_the_end_gets_it_once_when_it_reads() -> None:
    async def body(kube: FakeKube, cache: RestartCache) -> None:
        slow, quick = SlowClient(), Client()
        slow_follower, quick_follower = _follower(cache, slow), _follower(cache, quick)
        await until(lambda: ("ns", "a") in cache._waiters and bool(slow.sent and quick.sent))
        kube.events.put(watch_event("MODIFIED", watched_crr("a", 11, completed=True)))
        await asyncio.wait_for(quick_follower, 5)  # the slow one holds nobody up
        await until(lambda: slow.end_waiting)
        await asyncio.sleep(0.05)  # room for a wrong second send or an early end of the task
        assert not slow_follower.done()
        assert not any(m.get("more_body") is False for m in slow.sent)
        slow.reads.set()
        await asyncio.wait_for(slow_follower, 5)
        ends = [m for m in slow.sent if m.get("more_body") is False]
        assert len(ends) == 1 and b'"finished":true' in ends[0]["body"]
        assert slow.end_sent_by is slow_follower  # its own task finished the send

    _run(body)
