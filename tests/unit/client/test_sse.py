"""Server-sent events: the parser against the WHATWG rules, and ``crr follow`` resuming a cut
stream with Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import Callable

from crr_client.errors import EXIT_ENDED_BADLY, EXIT_OK, EXIT_REFUSED
from crr_client.sse import Event, EventParser

from tests.support.crr_runs import Crr
from tests.support.fake_gateway import FakeGateway, Reply, Script, Seen, restart_doc

Start = Callable[[Script], FakeGateway]
EVENTS = "/v1/namespaces/demo/restarts/web-0-x7k2p/events"


def parse(stream: bytes) -> tuple[list[Event], EventParser]:
    parser = EventParser()
    events = [event for line in stream.splitlines(keepends=True) for event in parser.feed(line)]
    return events, parser


def test_events_are_dispatched_at_blank_lines_with_type_data_and_id() -> None:
    events, parser = parse(
        b"retry: 2500\n\n"
        b": heartbeat\n\n"
        b'event: restart\nid: 7\ndata: {"a":\n'
        b"data:  1}\n\n"
        b"data: no type\r\n\r\n"
    )
    assert events == [
        Event("restart", '{"a":\n 1}', "7"),
        Event("message", "no type", "7"),  # the ID carries over to later events
    ]
    assert parser.retry_seconds == 2.5


def test_an_id_without_data_still_moves_the_last_event_id() -> None:
    events, parser = parse(b"id: 41\n\nid: 42\ndata: x\n\nid\n\n")
    assert [event.id for event in events] == ["42"]
    assert parser.last_event_id == ""  # a bare "id" line resets it, as the spec says


def test_what_the_parser_must_ignore() -> None:
    events, parser = parse(b"retry: soon\nid: a\0b\nbogus: 1\ndata\n\n")
    assert events == [Event("message", "", None)]
    assert parser.retry_seconds is None
    assert parser.last_event_id is None


def test_an_event_cut_by_a_dropped_connection_is_discarded() -> None:
    events, parser = parse(b"id: 3\ndata: whole\n\nid: 4\ndata: half")
    parser.reset_event()
    assert [e.data for e in events] == ["whole"]
    assert list(parser.feed(b"\n")) == []
    assert parser.last_event_id == "3"


def frame(document: dict[str, object]) -> bytes:
    version, data = document["resourceVersion"], json.dumps(document)
    return f"event: restart\nid: {version}\ndata: {data}\n\n".encode()


PENDING = restart_doc(rv="1")
RECREATING = restart_doc(rv="2", phase="Recreating", states=[("nginx", "Recreating")])
SUCCEEDED = restart_doc(
    rv="3", phase="Completed", result="Succeeded", states=[("nginx", "Succeeded")]
)


def test_follow_reconnects_with_last_event_id_after_the_stream_is_cut(
    gateway: Start, crr: Crr
) -> None:
    def script(seen: Seen) -> Reply:
        if "last-event-id" not in seen.headers:  # first connection: two events, then cut
            events = [b"retry: 10\n\n", frame(PENDING), b": heartbeat\n\n", frame(RECREATING)]
            return Reply(events=events, end_stream=False)
        assert seen.headers["last-event-id"] == "2"
        return Reply(events=[frame(SUCCEEDED)])

    fake = gateway(script)
    outcome = crr(fake, "follow", "demo/web-0-x7k2p")
    assert outcome.code == EXIT_OK
    assert [seen.path for seen in fake.requests()] == [EVENTS, EVENTS]
    assert fake.requests()[0].headers["accept"] == "text/event-stream"
    assert outcome.out.splitlines() == [
        "restart demo/web-0-x7k2p Pending: pod web-0, nginx, sidecar",
        "restart demo/web-0-x7k2p Recreating: pod web-0, nginx Recreating",
        "restart demo/web-0-x7k2p Succeeded: pod web-0, nginx Succeeded",
    ]


def test_follow_resumes_after_a_replica_ends_the_stream_early(gateway: Start, crr: Crr) -> None:
    """A draining replica ends the stream cleanly before the end: resume, do not stop."""
    answers = iter(
        [
            Reply(events=[b"retry: 10\n\n", frame(PENDING)]),
            Reply(events=[frame(SUCCEEDED)]),
        ]
    )
    fake = gateway(lambda _seen: next(answers))
    outcome = crr(fake, "follow", "demo/web-0-x7k2p", "-o", "json")
    assert outcome.code == EXIT_OK
    assert fake.requests()[1].headers["last-event-id"] == "1"
    assert [json.loads(line)["resourceVersion"] for line in outcome.out.splitlines()] == ["1", "3"]


def test_follow_exits_1_when_the_restart_failed(gateway: Start, crr: Crr) -> None:
    failed = restart_doc(rv="5", phase="Completed", result="Failed", failure="PodGone")
    outcome = crr(gateway(lambda _s: Reply(events=[frame(failed)])), "follow", "demo/x")
    assert outcome.code == EXIT_ENDED_BADLY
    assert "Failed (PodGone)" in outcome.out


def test_follow_of_an_unknown_restart_is_refused(gateway: Start, crr: Crr) -> None:
    outcome = crr(gateway(lambda _s: Reply.problem(404, "no such restart")), "follow", "demo/x")
    assert outcome.code == EXIT_REFUSED
    assert "no such restart" in outcome.err
