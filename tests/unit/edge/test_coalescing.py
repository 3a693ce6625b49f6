"""service.edge.connections.CoalescingTransport: a response's head leaves with its body.

The wrapped transport here records what it is asked to do; the loop is a real one, so "when
the loop comes round again" is the loop's own. What reaches a real socket through the whole
server is covered by the edge tests beside this one and by every integration test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from service.edge.connections import JOIN_LIMIT, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def get_write_buffer_size(self) -> int:
        return 0


async def next_turn() -> None:
    """Let the loop run the callbacks that are due (a zero sleep yields once)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def run(steps: Any) -> list[tuple[str, Any]]:
    async def main() -> list[tuple[str, Any]]:
        inner = RecordingTransport()
        await steps(CoalescingTransport(inner, asyncio.get_running_loop()), inner)
        return inner.calls

    return asyncio.run(main())


def test_a_head_and_its_body_leave_in_one_write() -> None:
    async def steps(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.hold_next_write()  # as the protocol does when a request's headers are in
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"{}")
        assert inner.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]  # at once, not later
        await next_turn()

    assert run(steps) == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]


def test_a_lone_head_leaves_when_the_loop_comes_round_and_later_writes_go_straight() -> None:
    async def steps(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.hold_next_write()
        transport.write(b"head")
        assert inner.calls == []
        assert transport.get_write_buffer_size() == 4  # what flow control sees includes it
        await next_turn()
        assert inner.calls == [("write", b"head")]
        transport.write(b"event")  # a stream's later events are not held
        assert inner.calls == [("write", b"head"), ("write", b"event")]

    assert run(steps) == [("write", b"head"), ("write", b"event")]


def test_only_the_first_write_after_a_request_is_held() -> None:
    async def steps(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.write(b"not armed")
        transport.hold_next_write()
        transport.write(b"head")
        transport.write(b"body")
        transport.write(b"more")
        assert inner.calls == [("write", b"not armed"), ("write", b"headbody"), ("write", b"more")]

    run(steps)


def test_large_writes_are_not_copied_together() -> None:
    big = b"x" * JOIN_LIMIT

    async def steps(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.hold_next_write()
        transport.write(b"head")
        transport.write(big)
        await next_turn()

    assert run(steps) == [("write", b"head"), ("write", big)]


def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def closing(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.hold_next_write()
        transport.write(b"last words")
        transport.close()
        await next_turn()

    async def aborting(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.hold_next_write()
        transport.write(b"never sent")
        transport.abort()
        await next_turn()

    async def ending(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        transport.hold_next_write()
        transport.write(b"before eof")
        transport.write_eof()
        await next_turn()

    assert run(closing) == [("write", b"last words"), ("close", None)]
    assert run(aborting) == [("abort", None)]
    assert run(ending) == [("write", b"before eof"), ("write_eof", None)]


def test_a_mutable_buffer_is_copied_when_held() -> None:
    async def steps(transport: CoalescingTransport, inner: RecordingTransport) -> None:
        buffer = bytearray(b"first")
        transport.hold_next_write()
        transport.write(buffer)
        buffer[:] = b"later"
        await next_turn()

    assert run(steps) == [("write", b"first")]
