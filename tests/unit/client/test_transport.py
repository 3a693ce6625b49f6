"""Retries that are safe, and only those; the token file read on every call; problems turned
into exit codes. Against a real HTTP server on 127.0.0.1; sleeping is recorded, not done."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from crr_client.config import Config
from crr_client.errors import EXIT_REFUSED, EXIT_UNAVAILABLE, Refused, TimedOut, Unavailable
from crr_client.transport import RetryPolicy, Transport, warning_texts

from tests.support.fake_gateway import FakeGateway, Reply, Script, Seen, restart_doc

Start = Callable[[Script], FakeGateway]
CREATE = "/v1/namespaces/demo/restarts"


class Recorder:
    """Stands in for time.sleep and time.monotonic: sleeping moves the clock."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 1000.0
        self.notices: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


Make = Callable[..., Transport]


@pytest.fixture
def transport() -> Iterator[Make]:
    """``transport(fake, clock, token_file=...)``; every one made is closed after the test."""
    made: list[Transport] = []

    def make(fake: FakeGateway, clock: Recorder, **config: str) -> Transport:
        made.append(
            Transport(
                Config(fake.url, **config),
                policy=RetryPolicy(attempts=4, budget_seconds=30),
                notice=clock.notices.append,
                sleep=clock.sleep,
                clock=clock.clock,
            )
        )
        return made[-1]

    yield make
    for t in made:
        t.close()


def replies(*script: Reply) -> Script:
    """Answer requests with these replies in turn, repeating the last."""
    answers = itertools.chain(script, itertools.repeat(script[-1]))
    return lambda _seen: next(answers)


def create(t: Transport, key: str = "key-1") -> int:
    body = {"pod": "web-0"}
    return t.request("POST", CREATE, body=body, headers={"Idempotency-Key": key}).status


def test_503_is_retried_after_the_seconds_retry_after_asks(gateway: Start, transport: Make) -> None:
    unreachable = Reply.problem(503, "apiserver unreachable")
    unreachable.headers["Retry-After"] = "2"
    fake = gateway(replies(unreachable, Reply(201, restart_doc())))
    clock = Recorder()
    assert create(transport(fake, clock)) == 201
    assert clock.slept == [2.0]
    assert any("503" in notice and "retrying in 2.0s" in notice for notice in clock.notices)


def test_a_create_retried_after_a_dropped_connection_carries_the_same_key(
    gateway: Start, transport: Make
) -> None:
    fake = gateway(replies(Reply(drop=True), Reply(504, {"detail": "slow"}), Reply(201, {})))
    clock = Recorder()
    assert create(transport(fake, clock), key="ci-42") == 201
    posts = fake.requests("POST")
    assert len(posts) == 3
    assert {seen.headers["idempotency-key"] for seen in posts} == {"ci-42"}
    assert all(seen.json() == {"pod": "web-0"} for seen in posts)


def test_retry_after_as_an_http_date_is_honoured(gateway: Start, transport: Make) -> None:
    in_a_while = formatdate(timeval=None, usegmt=True)  # now: retry at once
    fake = gateway(replies(Reply(429, {}, {"Retry-After": in_a_while}), Reply(200, {})))
    clock = Recorder()
    create(transport(fake, clock))
    assert len(clock.slept) == 1 and clock.slept[0] <= 1.0


def test_retries_are_bounded_in_number(gateway: Start, transport: Make) -> None:
    fake = gateway(replies(Reply(503, {"detail": "down"}, {"Retry-After": "1"})))
    clock = Recorder()
    with pytest.raises(Unavailable) as raised:
        create(transport(fake, clock))
    assert len(fake.requests()) == 4  # RetryPolicy(attempts=4)
    assert raised.value.exit_code == EXIT_UNAVAILABLE


def test_a_retry_after_beyond_the_budget_is_not_waited_for(gateway: Start, transport: Make) -> None:
    busy = Reply.problem(429, "namespace demo has 20 active restarts")
    busy.headers["Retry-After"] = "3600"
    fake = gateway(replies(busy))
    clock = Recorder()
    with pytest.raises(Refused) as raised:
        create(transport(fake, clock))
    assert clock.slept == []
    assert len(fake.requests()) == 1
    assert raised.value.exit_code == EXIT_REFUSED
    assert "20 active restarts" in raised.value.message
    assert raised.value.hint == "the service asks to retry after 3600s"


def test_a_request_that_is_not_repeatable_is_not_sent_twice(
    gateway: Start, transport: Make
) -> None:
    """A 504 or a connection lost after sending may mean it landed: no second try."""
    for reply in (Reply(504, {"detail": "slow apiserver"}), Reply(drop=True)):
        fake = gateway(replies(reply))
        with pytest.raises(Unavailable):
            transport(fake, Recorder()).request(
                "POST", "/v1/namespaces/demo/rollouts/r/cancel", repeatable=False
            )
        assert len(fake.requests()) == 1


def test_a_request_that_is_not_repeatable_is_retried_when_nothing_was_done(
    gateway: Start, transport: Make
) -> None:
    fake = gateway(replies(Reply(503, {}, {"Retry-After": "1"}), Reply(200, {})))
    clock = Recorder()
    path = "/v1/namespaces/demo/rollouts/r/pause"
    assert transport(fake, clock).request("POST", path, repeatable=False).status == 200
    assert clock.slept == [1.0]


def test_a_refused_connection_is_retried_then_reported(gateway: Start) -> None:
    fake = gateway(replies(Reply(200, {})))
    url = fake.url
    fake.__exit__(None, None, None)  # nothing listens there any more
    clock = Recorder()
    t = Transport(Config(url), policy=RetryPolicy(attempts=3), sleep=clock.sleep, clock=clock.clock)
    with pytest.raises(Unavailable) as raised:
        t.request("GET", CREATE)
    t.close()
    assert clock.slept == [0.5, 1.0]
    assert "connection refused" in raised.value.message


def test_retries_stop_at_the_commands_deadline(gateway: Start, transport: Make) -> None:
    fake = gateway(replies(Reply(503, {}, {"Retry-After": "5"})))
    clock = Recorder()
    with pytest.raises(Unavailable) as raised:
        transport(fake, clock).request("GET", CREATE, deadline=clock.now + 7)
    assert clock.slept == [5.0]
    assert raised.value.hint == "the service asks to retry after 5s"


def test_timeouts_past_the_deadline_are_reported_as_such(gateway: Start, transport: Make) -> None:
    fake = gateway(replies(Reply(drop=True)))
    clock = Recorder()
    with pytest.raises(TimedOut):
        transport(fake, clock).request("GET", CREATE, deadline=clock.now + 1.2)


def test_the_token_file_is_read_again_on_every_request(
    gateway: Start, transport: Make, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    fake = gateway(replies(Reply(200, {})))
    t = transport(fake, Recorder(), token_file=str(token_file))
    t.request("GET", CREATE)
    token_file.write_text("rotated-token\n")
    t.request("GET", CREATE)
    assert [seen.headers["authorization"] for seen in fake.requests()] == [
        "Bearer first-token",
        "Bearer rotated-token",
    ]


def test_a_401_right_after_rotation_is_retried_once_with_the_new_token(
    gateway: Start, transport: Make, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old")

    def script(seen: Seen) -> Reply:
        if seen.headers["authorization"] == "Bearer old":
            token_file.write_text("new")  # the kubelet rotates it while the call is in flight
            return Reply.problem(401, "token expired")
        return Reply(200, {})

    fake = gateway(script)
    transport(fake, Recorder(), token_file=str(token_file)).request("GET", CREATE)
    assert [seen.headers["authorization"] for seen in fake.requests()] == [
        "Bearer old",
        "Bearer new",
    ]


def test_a_401_with_an_unchanged_token_is_refused_at_once(
    gateway: Start, transport: Make, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("revoked")
    fake = gateway(replies(Reply.problem(401, "the token does not authenticate")))
    with pytest.raises(Refused) as raised:
        transport(fake, Recorder(), token_file=str(token_file)).request("GET", CREATE)
    assert len(fake.requests()) == 1
    assert raised.value.status == 401


def test_the_connection_is_kept_between_requests(gateway: Start, transport: Make) -> None:
    fake = gateway(replies(Reply(200, {})))
    t = transport(fake, Recorder())
    for _ in range(3):
        t.request("GET", CREATE)
    t.close()
    assert len(fake.requests()) == 3
    assert len({seen.peer for seen in fake.requests()}) == 1  # one connection for all three


def test_service_warnings_are_passed_on_once(gateway: Start, transport: Make) -> None:
    stale = '299 - "stale: apiserver unreachable since 12:00:00Z"'
    fake = gateway(replies(Reply(200, {}, {"Warning": stale})))
    clock = Recorder()
    t = transport(fake, clock)
    t.request("GET", CREATE)
    t.request("GET", CREATE)
    assert clock.notices == ["warning: stale: apiserver unreachable since 12:00:00Z"]


def test_a_warning_header_is_read_as_rfc_7234_says() -> None:
    header = '299 - "no \\"gate\\" here", 299 crr-gateway "short deadline" "Sat, 29 Nov 2026"'
    assert warning_texts(header) == ['no "gate" here', "short deadline"]
    assert warning_texts("not the usual shape") == ["not the usual shape"]
