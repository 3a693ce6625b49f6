"""Server-sent events: a parser that follows the WHATWG rules, and a follower that reconnects
with ``Last-Event-ID`` until the restart or rollout has finished.

The service sends ``event: restart`` (or ``rollout``), ``id: <resourceVersion>`` and the
document as ``data`` on every change, comment heartbeats in between, and ends the stream after
the finished snapshot. A stream that ends early (a replica shutting down, a proxy timeout, a
dropped connection) is resumed after the ``retry:`` delay it announced; the ``Last-Event-ID``
header makes the service send only what changed since."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from crr_client.errors import TimedOut, Unavailable
from crr_client.transport import Transport

DEFAULT_RETRY_SECONDS = 3.0  # until the server announces its own
MAX_FAILED_CONNECTS = 8  # reconnects in a row that brought no event
READ_TIMEOUT_SECONDS = 60.0  # heartbeats come every 15 s by default: silence means a dead link


class Event(NamedTuple):
    type: str
    data: str
    id: str | None  # the last event ID after this event


class EventParser:
    """Feed it lines; it yields events as blank lines complete them."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry_seconds: float | None = None
        self._type = ""
        self._data: list[str] = []
        self._id_buffer: str | None = None

    def feed(self, raw: bytes) -> Iterator[Event]:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line == "":
            yield from self._dispatch()
            return
        if line.startswith(":"):
            return  # a comment: the heartbeat
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._type = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif field == "retry":
            if value.isdigit():
                self.retry_seconds = int(value) / 1000

    def _dispatch(self) -> Iterator[Event]:
        if self._id_buffer is not None:
            self.last_event_id = self._id_buffer
        data, event_type = self._data, self._type or "message"
        self._data, self._type = [], ""
        if data:
            yield Event(event_type, "\n".join(data), self.last_event_id)

    def reset_event(self) -> None:
        """A connection ended: an event it did not complete is discarded, the ID is kept."""
        self._data, self._type, self._id_buffer = [], "", self.last_event_id


def follow(
    transport: Transport,
    path: str,
    event_type: str,
    *,
    on_snapshot: Callable[[dict[str, Any], str], None],
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Stream ``path`` until a snapshot with ``finished: true``; return it. ``on_snapshot`` gets
    each document and its JSON text as sent."""
    parser = EventParser()
    failed_connects = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if parser.last_event_id:  # an empty ID means "none", as for browsers
            headers["Last-Event-ID"] = parser.last_event_id
        received = False
        problem: str | None = None
        stream = transport.stream(
            path, headers=headers, timeout=READ_TIMEOUT_SECONDS, deadline=deadline
        )
        try:
            while True:
                try:
                    raw = stream.readline()
                except (OSError, http.client.HTTPException) as e:
                    problem = f"the event stream broke: {e or type(e).__name__}"
                    break
                if not raw:
                    problem = "the event stream ended before the end"
                    break
                for event in parser.feed(raw):
                    if event.type != event_type:
                        continue
                    received = True
                    document = json.loads(event.data)
                    on_snapshot(document, event.data)
                    if document.get("finished"):
                        return dict(document)
        finally:
            stream.close()
        parser.reset_event()
        failed_connects = 0 if received else failed_connects + 1
        if failed_connects >= MAX_FAILED_CONNECTS:
            raise Unavailable(f"{problem}; gave up after {failed_connects} reconnects")
        delay = parser.retry_seconds if parser.retry_seconds is not None else DEFAULT_RETRY_SECONDS
        if deadline is not None and clock() + delay >= deadline:
            raise TimedOut(f"timed out following {path}")
        sleep(delay)
