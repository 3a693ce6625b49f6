"""Reading a namespace watch stream (``GET .../restarts?watch=true``) in tests, with the command
line client's WHATWG parser: one connection at a time, read an event (or a heartbeat) at a time,
so a test decides when to stop, when to reconnect and with which ``Last-Event-ID``; and the
client's side of the protocol (``Mirror``: what a client holds after the events)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from crr_client.sse import EventParser

Obj = dict[str, Any]


@dataclass(frozen=True)
class Event:
    type: str
    id: str | None  # the last event ID after this event, as a browser would resend it
    data: Obj

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))


@dataclass
class Mirror:
    """What a client following the stream holds: RESET starts a listing that replaces the
    objects at its BOOKMARK; ADDED and MODIFIED put an object, DELETED removes it."""

    objects: dict[str, Obj] = field(default_factory=dict)
    _listing: dict[str, Obj] | None = None

    def apply(self, event: Event) -> None:
        if event.type == "RESET":
            self._listing = {}
        elif event.type == "BOOKMARK":
            if event.data.get("initialEventsEnd") and self._listing is not None:
                self.objects, self._listing = self._listing, None
        else:
            into = self._listing if self._listing is not None else self.objects
            if event.type in ("ADDED", "MODIFIED"):
                into[event.name] = event.data
            else:
                assert event.type == "DELETED", event
                into.pop(event.name, None)


class WatchConnection:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[Event] = []
        self._parser = EventParser()
        self._items = self._read(response.iter_lines())

    def _read(self, lines: Iterator[str]) -> Iterator[Event | None]:
        """Events as they complete, and None for each heartbeat (a comment line)."""
        for line in lines:
            if line.startswith(":"):
                yield None
            for parsed in self._parser.feed(line.encode()):
                event = Event(parsed.type, parsed.id, json.loads(parsed.data))
                self.events.append(event)
                yield event

    @property
    def last_event_id(self) -> str | None:
        return self._parser.last_event_id

    def next(self) -> Event:
        """The next event, heartbeats skipped (fails the test if the stream ends first)."""
        for item in self._items:
            if item is not None:
                return item
        raise AssertionError(f"the stream ended after {self.events}")

    def listing(self) -> list[Obj]:
        """Read a full listing: RESET, ADDED for each object, the BOOKMARK that ends it."""
        first = self.next()
        assert first.type == "RESET" and first.id == "", first
        objects = []
        while (event := self.next()).type == "ADDED":
            objects.append(event.data)
        assert event.type == "BOOKMARK" and event.data == {"initialEventsEnd": True}, event
        assert event.id, event
        return objects

    def until(self, done: Callable[[Event], bool]) -> list[Event]:
        """Events up to and including the first that ``done`` accepts."""
        seen = []
        while True:
            event = self.next()
            seen.append(event)
            if done(event):
                return seen

    def read_to_end(self) -> list[Event]:
        """The events until the server ends the stream."""
        return [item for item in self._items if item is not None]

    def quiet(self) -> None:
        """Read until a heartbeat: nothing was due before it (fails if an event comes)."""
        for item in self._items:
            assert item is None, f"an event where a heartbeat was due: {item}"
            return
        raise AssertionError(f"the stream ended after {self.events}")


@contextmanager
def watch_stream(
    client: httpx.Client,
    path: str,
    *,
    last_event_id: str | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[WatchConnection]:
    """Open ``path?watch=true`` (a namespace's restarts or rollouts) as a reconnect would."""
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        sent["Last-Event-ID"] = last_event_id
    query = {"watch": "true", **(params or {})}
    with client.stream("GET", path, params=query, headers=sent) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield WatchConnection(response)
