"""Namespace watch streams (``service.http.watch``): the events a filter sees of each change,
the listing, resuming after a token (and a full listing for a token that cannot be resumed),
bookmarks and heartbeats, the per-caller bound; then over the real app and uvicorn with a fake
of our own port: the content type, the SubjectAccessReview verb, 429 and the slot given back
when the client goes away. (On the real control plane: tests/integration/test_api_watch.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.cache.entries import Entry
from service.cache.feed import ChangeFeed
from service.cache.store import RestartCache
from service.config import Settings
from service.core.errors import TooManyStreams
from service.core.objects import KubeObject
from service.http.watch import StreamSlots, watch_events
from service.metrics import Metrics
from tests.support.auth import assert_problem, bearer
from tests.support.crrs import watched_crr
from tests.support.fake_kube import FakeKube
from tests.support.serving import serve
from tests.support.waiting import wait_until
from tests.support.watch import watch_stream

Frame = tuple[str, str | None, str]  # (event, id, restart name or data)


def frames(chunk: bytes) -> list[Frame]:
    """The events of a chunk the stream yielded: (event, id or None, data's name or data)."""
    out: list[Frame] = []
    for block in chunk.decode().split("\n\n"):
        if not block or block.startswith((":", "retry:")):
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            fields[key.rstrip(":")] = value
        data = fields.get("data", "")
        name = data.split('"name":"', 1)[1].split('"', 1)[0] if '"name":"' in data else data
        out.append((fields["event"], fields.get("id"), name))
    return out


class Stream:
    """A watch stream read chunk by chunk on the event loop."""

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        self._events = events

    async def next(self) -> list[Frame]:
        while True:
            chunk = await asyncio.wait_for(anext(self._events), 5)
            if chunk.startswith(b"retry:"):
                continue
            return frames(chunk)


def run(
    body: Callable[[RestartCache, ChangeFeed[Entry]], Awaitable[None]], backlog: int = 100
) -> None:
    async def main() -> None:
        cache = RestartCache(FakeKube(), Settings(namespaces=["ns"]), Metrics())
        await body(cache, ChangeFeed(cache, backlog=backlog))

    asyncio.run(main())


def everything(entry: Entry) -> bool:
    return True


def follow(
    feed: ChangeFeed[Entry],
    keep: Callable[[Entry], bool] = everything,
    last_event_id: str | None = None,
    heartbeat: float = 30,
) -> Stream:
    events = watch_events(
        feed, "ns", keep, last_event_id=last_event_id, heartbeat=heartbeat, lifetime=600
    )
    return Stream(events)


def listing(names: Sequence[str], token: str) -> list[Frame]:
    return [
        ("RESET", "", "{}"),
        *[("ADDED", None, n) for n in names],
        ("BOOKMARK", token, '{"initialEventsEnd":true}'),
    ]


def test_a_stream_lists_the_live_objects_then_sends_each_change() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        cache.observe(watched_crr("b", 2))
        cache.observe(watched_crr("a", 1))
        cache.observe_deleted(watched_crr("gone", 3))  # never live here: not listed
        log_id = feed.log("ns").id
        stream = follow(feed)
        assert await stream.next() == listing(["a", "b"], f"{log_id}.2")
        cache.observe(watched_crr("c", 4))
        assert await stream.next() == [("ADDED", f"{log_id}.3", "c")]
        cache.observe(watched_crr("a", 5, completed=True))
        assert await stream.next() == [("MODIFIED", f"{log_id}.4", "a")]
        cache.observe_deleted(watched_crr("b", 6))
        assert await stream.next() == [("DELETED", f"{log_id}.5", "b")]

    run(body)


def test_a_filter_sees_objects_enter_and_leave_it() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        cache.observe(watched_crr("a", 1))
        log_id = feed.log("ns").id
        unfinished = follow(feed, lambda e: not e.restart.finished)
        on_web_1 = follow(feed, lambda e: e.restart.pod == "web-1")
        assert await unfinished.next() == listing(["a"], f"{log_id}.1")
        assert await on_web_1.next() == listing([], f"{log_id}.1")
        cache.observe(watched_crr("b", 2, pod="web-1"))
        cache.observe(watched_crr("a", 3, completed=True))  # finished: leaves "unfinished"
        assert await unfinished.next() == [("ADDED", f"{log_id}.2", "b")]
        assert await unfinished.next() == [("DELETED", f"{log_id}.3", "a")]
        assert await on_web_1.next() == [("ADDED", f"{log_id}.2", "b")]
        cache.observe_deleted(watched_crr("a", 4, completed=True))  # already out of "unfinished"
        cache.observe(watched_crr("b", 5, pod="web-1", completed=True))
        assert await unfinished.next() == [("DELETED", f"{log_id}.5", "b")]
        assert await on_web_1.next() == [("MODIFIED", f"{log_id}.5", "b")]

    run(body)


def test_resuming_sends_only_the_changes_after_the_token() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        cache.observe(watched_crr("a", 1))
        cache.observe(watched_crr("b", 2))
        log_id = feed.log("ns").id
        cache.observe(watched_crr("a", 3, completed=True))
        cache.observe(watched_crr("c", 4))
        cache.observe_deleted(watched_crr("b", 5))
        stream = follow(feed, last_event_id=f"{log_id}.2")
        assert await stream.next() == [("MODIFIED", f"{log_id}.3", "a")]
        assert await stream.next() == [("ADDED", f"{log_id}.4", "c")]
        assert await stream.next() == [("DELETED", f"{log_id}.5", "b")]

    run(body)


@pytest.mark.parametrize(
    "token",
    ["0000000.1", "garbage", "", "{log}.x", "{log}.99", "{log}.1"],
    ids=["another-log", "garbage", "empty", "not-a-number", "from-the-future", "too-old"],
)
def test_a_token_that_cannot_be_resumed_gets_a_full_listing(token: str) -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        for rv in range(1, 5):
            cache.observe(watched_crr("a", rv))
        cache.observe(watched_crr("b", 5))
        log_id = feed.log("ns").id
        stream = follow(feed, last_event_id=token.format(log=log_id))
        assert await stream.next() == listing(["a", "b"], f"{log_id}.5")

    run(body, backlog=2)


def test_quiet_streams_get_heartbeats_and_filtered_ones_bookmarks() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        log_id = feed.log("ns").id
        events = watch_events(
            feed,
            "ns",
            lambda e: e.restart.pod == "web-1",
            last_event_id=None,
            heartbeat=0.05,
            lifetime=600,
        )
        assert await anext(events) == b"retry: 3000\n\n"
        assert frames(await anext(events)) == listing([], f"{log_id}.0")
        assert await anext(events) == b": heartbeat\n\n"
        cache.observe(watched_crr("a", 1))  # not for this filter: a bookmark carries the new token
        assert frames(await anext(events)) == [("BOOKMARK", f"{log_id}.1", "{}")]
        assert await anext(events) == b": heartbeat\n\n"

    run(body)


def test_a_stream_ends_when_the_feed_drains() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        events = watch_events(
            feed, "ns", everything, last_event_id=None, heartbeat=30, lifetime=600
        )
        await anext(events)
        await anext(events)
        pending = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        feed.drain()
        with pytest.raises(StopAsyncIteration):
            await pending

    run(body)


def test_a_stream_ends_after_its_lifetime_with_the_token_to_go_on_from() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        log_id = feed.log("ns").id
        events = watch_events(
            feed,
            "ns",
            lambda e: e.restart.pod == "web-1",
            last_event_id=None,
            heartbeat=30,
            lifetime=0.2,
        )
        chunks = [await anext(events), await anext(events)]
        cache.observe(watched_crr("a", 1))  # not for this filter
        chunks += [chunk async for chunk in events]
        assert [f for chunk in chunks for f in frames(chunk)] == [
            *listing([], f"{log_id}.0"),
            ("BOOKMARK", f"{log_id}.1", "{}"),
        ]

    run(body)


def test_a_stream_that_falls_behind_the_backlog_is_listed_again() -> None:
    async def body(cache: RestartCache, feed: ChangeFeed[Entry]) -> None:
        log_id = feed.log("ns").id
        stream = follow(feed)
        assert await stream.next() == listing([], f"{log_id}.0")
        for rv in range(1, 5):  # more changes than the backlog before it reads again
            cache.observe(watched_crr(f"r{rv}", rv))
        assert await stream.next() == listing(["r1", "r2", "r3", "r4"], f"{log_id}.4")

    run(body, backlog=2)


def test_each_caller_holds_at_most_its_streams() -> None:
    slots = StreamSlots(2)
    first, second = slots.take("alice"), slots.take("alice")
    slots.take("bob")
    with pytest.raises(TooManyStreams) as refused:
        slots.take("alice")
    assert refused.value.headers["Retry-After"]
    first()
    first()  # released once only
    assert slots.held("alice") == 1
    third = slots.take("alice")
    second()
    third()
    assert slots.held("alice") == 0


# ---------------------------------------------------------------- over HTTP


class ReviewingKube(FakeKube):
    """Authenticates every token as ``portal`` and allows every access, noting the verbs."""

    def __init__(self) -> None:
        super().__init__()
        self.items = [watched_crr("a", 1)]
        self.verbs: list[str] = []

    def review_token(self, token: str, audiences: Sequence[str]) -> KubeObject:
        return {"authenticated": True, "user": {"username": token}}

    def review_access(self, spec: KubeObject) -> KubeObject:
        self.verbs.append(spec["resourceAttributes"]["verb"])
        return {"allowed": True}


@pytest.fixture
def kube() -> ReviewingKube:
    return ReviewingKube()


@pytest.fixture
def client(kube: ReviewingKube) -> Iterator[httpx.Client]:
    settings = Settings(
        namespaces=["ns"],
        auth_mode="kubernetes",
        watch_streams_per_caller=1,
        sse_heartbeat_seconds=0.2,
        auth_cache_ttl_seconds=0,
        authz_cache_ttl_seconds=0,
    )
    app = create_app(settings, kube_factory=lambda _settings: kube)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        wait_until("ready", lambda: client.get("/readyz").status_code == 200)
        yield client


URL = "/v1/namespaces/ns/restarts"


def test_a_watch_asks_for_watch_and_a_list_for_list(
    client: httpx.Client, kube: ReviewingKube
) -> None:
    assert client.get(URL, headers=bearer("alice")).status_code == 200
    with watch_stream(client, URL, headers=bearer("alice")) as stream:
        assert [r["name"] for r in stream.listing()] == ["a"]
        assert stream.response.headers["cache-control"] == "no-cache"
    assert kube.verbs == ["list", "watch"]


def test_a_caller_over_its_streams_gets_429_until_one_closes(client: httpx.Client) -> None:
    with watch_stream(client, URL, headers=bearer("alice")) as stream:
        stream.listing()
        refused = client.get(URL, params={"watch": "true"}, headers=bearer("alice"))
        body = assert_problem(refused, 429, "too-many-streams")
        assert "alice" in body["detail"] and refused.headers["retry-after"]
        with watch_stream(client, URL, headers=bearer("bob")) as other:  # a bound per caller
            other.listing()
    # the client went away: its slot is free again (the server notices the disconnect)
    with watch_stream(client, URL, headers=bearer("alice")) as again:
        again.listing()


def test_a_watch_ends_after_timeout_seconds(client: httpx.Client) -> None:
    with watch_stream(
        client, URL, params={"timeoutSeconds": "1"}, headers=bearer("alice")
    ) as stream:
        assert [r["name"] for r in stream.listing()] == ["a"]
        assert stream.read_to_end() == []  # the server ends it: nothing changed meanwhile
    refused = client.get(URL, params={"watch": "true", "timeoutSeconds": "0"}, headers=bearer("a"))
    assert_problem(refused, 422)


def test_a_watch_without_a_token_is_401(client: httpx.Client) -> None:
    assert_problem(client.get(URL, params={"watch": "true"}), 401, "unauthenticated")


def test_the_rollouts_watch_lists_them_too(client: httpx.Client) -> None:
    with watch_stream(client, "/v1/namespaces/ns/rollouts", headers=bearer("alice")) as stream:
        assert stream.listing() == []
        stream.quiet()


def test_answers_of_the_list_route_are_unchanged_without_watch(client: httpx.Client) -> None:
    response = client.get(URL, headers=bearer("alice"))
    assert response.headers["content-type"] == "application/json"
    assert [r["name"] for r in response.json()["items"]] == ["a"]


def test_the_watch_parameter_is_described(client: httpx.Client) -> None:
    spec: dict[str, Any] = client.get("/openapi.json").json()
    for path in (URL.replace("ns", "{namespace}"), "/v1/namespaces/{namespace}/rollouts"):
        operation = spec["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"watch", "timeoutSeconds", "Last-Event-ID"} <= names
        assert "text/event-stream" in operation["responses"]["200"]["content"]
        assert "429" in operation["responses"]
