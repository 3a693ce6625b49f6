"""Slow and idle clients: a deadline on request headers and a cap on open connections.

uvicorn has neither. Its HTTP protocols (``uvicorn/protocols/http/httptools_impl.py``,
``h11_impl.py``) arm no timer when a connection opens and only the keep-alive timer after a
response, which the first byte of the next request cancels: a client that sends a request line
and never ends its headers (or connects and sends nothing) holds a socket for ever, and
thousands of them exhaust the process's file descriptors. Its ``limit_concurrency`` is not a
cap either: it counts connections and running requests, but is checked only once a request's
headers are complete, so connections that never complete them are accepted without bound; and
once the count is reached every request is answered 503, the established clients' polls too,
while the idle sockets that filled it stay open.

So this module subclasses uvicorn's httptools protocol (the one ``uvicorn[standard]`` runs; one
instance per connection, ``uvicorn.Config(http=...)`` takes the class) and adds, per connection:

* **a header deadline**: armed when the connection is made, and again when the first byte of a
  later request on a kept-alive connection arrives (or, for a request pipelined behind another,
  when the other's response is complete); disarmed when the headers are complete.
  When it fires the connection is closed, with a 408 problem if a request had begun. It counts
  from the start of the request: a client trickling a header byte a second is closed just the
  same. The body is not under it: the size limit bounds bodies (``BodyLimitMiddleware``).
* **a cap, applied when the connection is accepted**: uvicorn's own set of open connections
  (``server_state.connections``) never grows past ``max_connections``. A connection beyond it is
  answered 503 (``Retry-After: 1``, ``Connection: close``) at once, without reading a request,
  and is never served, so established clients keep being served. Closing a socket whose request
  is still unread makes the kernel send a reset, which can destroy the 503 before the client
  reads it, so a refused connection lingers, discarding what it reads, until the client closes
  (a client that reads its 503 closes within milliseconds) or the header deadline. At most
  ``LINGERING_MAX`` (or the cap, if lower) linger at once; beyond that (a flood), connections
  are reset at once, unanswered. Past their handshake, the process thus holds at most
  ``max_connections + LINGERING_MAX`` client connections, none longer than the header deadline
  without a complete request. Each TLS connection costs far more memory than a plain one
  (asyncio gives each a 256 KiB read buffer): docs/edge.md sizes the cap for that.

With TLS, ``connection_made`` comes after the handshake; the handshake itself is bounded by the
same deadline in ``service.edge.server``.

And it hands uvicorn a transport that sends a response's head and body in one write
(``CoalescingTransport``), and sets ``TCP_NODELAY`` whoever bound the listening socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.core.errors import PROBLEM_BASE

log = logging.getLogger(__name__)

SUMMARY_INTERVAL_SECONDS = 10.0
LINGERING_MAX = 64


@dataclass
class ConnectionGuard:
    """The limits of one server, and what its connections share: the refusals lingering now,
    and counts for a warning at most every ``SUMMARY_INTERVAL_SECONDS`` (under an attack a
    line per connection would flood the log)."""

    header_timeout: float
    max_connections: int
    lingering: set[GuardedHttpProtocol] = field(default_factory=set)
    _counts: dict[str, int] = field(default_factory=dict)
    _last_summary: float = 0.0

    def note(self, what: str) -> None:
        self._counts[what] = self._counts.get(what, 0) + 1
        now = time.monotonic()
        if now - self._last_summary >= SUMMARY_INTERVAL_SECONDS:
            counts = ", ".join(f"{count} {kind}" for kind, count in sorted(self._counts.items()))
            log.warning(
                "slow or excess clients (header deadline %gs, at most %d connections): %s",
                self.header_timeout,
                self.max_connections,
                counts,
            )
            self._counts.clear()
            self._last_summary = now


def guarded_http_protocol(guard: ConnectionGuard) -> type[GuardedHttpProtocol]:
    """The protocol class for one server's ``uvicorn.Config(http=...)``, bound to ``guard``."""

    class BoundHttpProtocol(GuardedHttpProtocol):
        pass

    BoundHttpProtocol.guard = guard
    return BoundHttpProtocol


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a cap checked on accept."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._request_begun = False
        self._refused = False

    # --------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guard.max_connections:
            self._refuse(transport)
            return
        _no_delay(transport)
        self._coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(self._coalescing)
        self._arm_deadline()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read only so that closing sends no reset; the answer is already out
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            # Bytes between requests: a new request starts, and uvicorn (below) cancels its
            # keep-alive timer, so the deadline takes over until the headers are complete.
            self._arm_deadline()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        if self._refused:
            self.guard.lingering.discard(self)
            return
        super().connection_lost(exc)

    # --------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        self._request_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm_deadline()
        self._request_begun = False
        self._coalescing.hold_next_write()  # the response's head waits for its body
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._request_begun and self._deadline is None and not self.transport.is_closing():
            # A pipelined request began while this one was served and its headers are still
            # incomplete: uvicorn only arms its keep-alive timer here, so the deadline resumes.
            self._arm_deadline()

    # --------------------------------------------------------------- the deadline

    def _arm_deadline(self) -> None:
        self._deadline = self.loop.call_later(self.guard.header_timeout, self._deadline_passed)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.guard.note("header deadlines passed")
        if self._request_begun:  # a client that sent nothing is owed no answer
            self.transport.write(
                _problem(
                    408,
                    "header-timeout",
                    f"the request headers were not complete within {self.guard.header_timeout:g} s",
                )
            )
        self.transport.close()

    # --------------------------------------------------------------- beyond the cap

    def _refuse(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._refused = True
        if len(self.guard.lingering) >= min(self.guard.max_connections, LINGERING_MAX):
            self.guard.note("connections reset (flood)")
            transport.abort()
            return
        self.guard.note("connections refused with 503")
        self.guard.lingering.add(self)
        transport.write(
            _problem(
                503,
                "too-many-connections",
                f"this replica already serves its maximum of {self.guard.max_connections} "
                "connections; retry, on a new connection",
                retry_after=1,
            )
        )
        if transport.can_write_eof():  # plain TCP: the FIN tells the client we are done
            transport.write_eof()
        self._deadline = self.loop.call_later(self.guard.header_timeout, transport.abort)


# A held write is joined to the next one only below this size: beyond it, copying costs more
# than the second send saves (list pages, large bodies).
JOIN_LIMIT = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A connection's transport that sends a response's head together with what follows it.

    uvicorn writes a response's status line and headers with one ``transport.write`` and its
    body with another, and asyncio's transport sends each at once: two ``send()`` calls, two
    TCP segments (two records with TLS) for a response the app handed over whole. Those sends
    were 45% of the fast path's event-loop time (BENCHMARKS.md, "Polls"). So once a request's
    headers are in, the protocol calls :meth:`hold_next_write`: the response's first write (its
    head) is held, and the next write joins it. If the loop comes round before that (a stream
    whose first event comes later), the head leaves alone from a ``call_soon`` callback, so it
    waits no longer than the callbacks already due. Later writes (a stream's events) go
    straight out. Closing sends what is held first; aborting drops it, as it drops the
    transport's own buffer. Everything else is the wrapped transport's.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._hold_next = False
        self._held: bytes | None = None
        self._flush_due = False

    def hold_next_write(self) -> None:
        self._hold_next = True

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(held) + len(data) <= JOIN_LIMIT:
                self._transport.write(b"".join((held, data)))
            else:
                self._transport.write(held)
                self._transport.write(data)
        elif self._hold_next and data:
            self._hold_next = False
            self._held = bytes(data)  # held past this call: a copy of anything mutable
            if not self._flush_due:
                self._flush_due = True
                self._loop.call_soon(self._flush_held)
        else:
            self._transport.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview[Any]]) -> None:
        self.write(b"".join(list_of_data))

    def _flush_held(self) -> None:
        self._flush_due = False
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def get_write_buffer_size(self) -> int:
        held = 0 if self._held is None else len(self._held)
        return self._transport.get_write_buffer_size() + held

    def close(self) -> None:
        self._flush_held()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush_held()
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._flush_held()  # an upgraded connection's new protocol writes straight on
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


_REASONS = {408: b"Request Timeout", 503: b"Service Unavailable"}


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off on a TCP connection, whoever made the listening socket.

    asyncio sets ``TCP_NODELAY`` only on sockets created with ``proto=IPPROTO_TCP``; a socket
    bound by uvicorn's ``--workers``/``--fd`` (``Config.bind_socket``), by systemd or by a test
    says ``proto=0`` and keeps Nagle on. uvicorn writes a response as headers then body, so the
    body waits for the client's delayed ACK: about 40 ms per poll (BENCHMARKS.md,
    "``--workers 2``")."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _problem(status: int, slug: str, detail: str, *, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 response carrying an RFC 9457 problem, written straight to the socket
    (no request reached the app), and the last on its connection."""
    body = json.dumps(
        {
            "type": PROBLEM_BASE + slug,
            "title": _REASONS[status].decode(),
            "status": status,
            "detail": detail,
        },
        separators=(",", ":"),
    ).encode()
    head = [
        b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
        b"content-type: application/problem+json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body
