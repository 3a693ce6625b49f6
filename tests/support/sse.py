"""Reading the service's server-sent events in tests, with the command line client's parser
(``crr_client.sse.EventParser``, the WHATWG rules): one connection at a time, so a test
decides when to stop reading, when to reconnect and with which ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from crr_client.sse import EventParser


@dataclass
class Snapshot:
    """One event: its ``id`` (the restart's resourceVersion) and the restart it carries."""

    id: str | None
    type: str
    restart: dict[str, Any]


class Connection:
    """One open event stream, read a snapshot (or a heartbeat) at a time until the server
    ends it."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.snapshots: list[Snapshot] = []
        self._items = self._read(response.iter_lines(), EventParser())

    def _read(self, lines: Iterator[str], parser: EventParser) -> Iterator[Snapshot | None]:
        """Snapshots as they complete, and None for each heartbeat (a comment line)."""
        for line in lines:
            if line.startswith(":"):
                yield None
            for event in parser.feed(line.encode()):
                snapshot = Snapshot(event.id, event.type, json.loads(event.data))
                self.snapshots.append(snapshot)
                yield snapshot

    def next(self) -> Snapshot:
        """The next snapshot (fails the test if the stream ends first)."""
        for item in self._items:
            if item is not None:
                return item
        raise AssertionError(f"the stream ended after {self.snapshots}")

    def quiet(self) -> None:
        """Read until a heartbeat: the server is waiting for a change and had no snapshot to
        send before it (fails the test if one comes, or the stream ends)."""
        for item in self._items:
            assert item is None, f"a snapshot where a heartbeat was due: {item}"
            return
        raise AssertionError(f"the stream ended after {self.snapshots}")

    def read_to_end(self) -> list[Snapshot]:
        """Every snapshot until the server ends the stream (raises if it is cut mid-event);
        returns those this connection sent."""
        for _ in self._items:
            pass
        return self.snapshots


@contextmanager
def event_stream(
    client: httpx.Client, path: str, last_event_id: str | None = None
) -> Iterator[Connection]:
    """Open ``path`` (a restart's ``/events``) as the client's reconnect would."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Connection(response)
