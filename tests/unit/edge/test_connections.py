"""service.edge.connections: the header deadline and the connection cap, on loopback.

The real server (``service.edge.server.build_server``: uvicorn with the guarded protocol)
serves a two-route app in a thread; clients are raw sockets, so a test controls exactly which
bytes are sent and when. Every wait is bounded and generous; the assertions are about what a
client sees (an answer, a close), never about how long it took. The same against the whole
service: tests/integration/test_edge_slow_clients.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from service.config import Settings
from service.edge.server import build_server
from tests.support.raw_http import read_response, read_until_closed
from tests.support.serving import free_port
from tests.support.waiting import wait_until

HEADER_TIMEOUT = 0.5
WAIT = 10.0  # generous bound on any one wait for the server


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(2 * HEADER_TIMEOUT)  # longer than the header deadline
        return {"ok": True}

    return app


@contextlib.contextmanager
def running(**settings: float) -> Iterator[int]:
    port = free_port()
    server = build_server(
        Settings(port=port, log_level="warning", **settings),  # type: ignore[arg-type]
        tiny_app(),
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until("the server to start", lambda: server.started or not thread.is_alive(), WAIT)
    assert thread.is_alive(), "the server failed to start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(WAIT)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    return sock


def problem_of(response: bytes) -> dict[str, object]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    problem: dict[str, object] = json.loads(body)
    return problem


# ------------------------------------------------------------------------- the header deadline


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with running(header_timeout_seconds=HEADER_TIMEOUT, max_connections=64) as port:
        yield port


def test_unfinished_headers_get_408_and_the_connection_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in response.lower()
    problem = problem_of(response)
    assert problem["type"] == "urn:crr-gateway:problem:header-timeout"
    assert problem["status"] == 408


def test_a_connection_that_sends_nothing_is_closed_unanswered(port: int) -> None:
    with connect(port) as sock:
        assert read_until_closed(sock) == b""


def test_a_client_trickling_header_bytes_is_closed_all_the_same(port: int) -> None:
    """The deadline counts from the start of the request, not from the last byte."""
    with connect(port) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\n")
        received = b""
        for _ in range(int(WAIT / 0.05)):  # a header byte every 50 ms, bounded
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                received = read_until_closed(sock)
                break
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail("the server kept a trickling client open")
    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_slow_second_request_on_a_kept_alive_connection_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: te")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_an_unfinished_request_pipelined_behind_another_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\nGET /ping HTTP/1.1\r\nHost: te")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_complete_requests_are_never_cut_by_the_deadline(port: int) -> None:
    with connect(port) as sock:
        # a response that takes longer than the header deadline
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        # an idle kept-alive connection is the keep-alive timeout's business (75 s), not the
        # deadline's: still open and served after several deadlines' worth of idling
        time.sleep(2 * HEADER_TIMEOUT)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")


# ------------------------------------------------------------------------- the cap


CAP = 3


@pytest.fixture
def capped() -> Iterator[int]:
    # a long header deadline here: idle sockets must hold their places for the whole test
    with running(header_timeout_seconds=60, max_connections=CAP) as port:
        yield port


def test_beyond_the_cap_new_connections_get_503_and_established_ones_are_served(
    capped: int,
) -> None:
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{capped}", timeout=WAIT) as established,
        contextlib.ExitStack() as idle,
    ):
        assert established.get("/ping").status_code == 200  # one connection, kept alive
        for _ in range(CAP - 1):
            idle.enter_context(connect(capped))

        with httpx.Client(timeout=WAIT) as newcomer:
            refused = newcomer.get(f"http://127.0.0.1:{capped}/ping")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:crr-gateway:problem:too-many-connections"
        assert f"maximum of {CAP} connections" in refused.json()["detail"]

        # the established client's polls keep being answered while the cap is reached
        for _ in range(5):
            assert established.get("/ping").status_code == 200

        idle.close()  # places free up: new connections are served again

        def newcomer_served() -> bool:
            with httpx.Client(timeout=WAIT) as client:
                return client.get(f"http://127.0.0.1:{capped}/ping").status_code == 200

        wait_until("a new connection to be served once places are free", newcomer_served, WAIT)


def test_a_flood_beyond_twice_the_cap_is_reset_unanswered(capped: int) -> None:
    with contextlib.ExitStack() as held:
        for _ in range(CAP):
            held.enter_context(connect(capped))  # served places, idle
        refused = [held.enter_context(connect(capped)) for _ in range(CAP)]
        for sock in refused:  # answered at once, then kept while they linger
            assert sock.recv(65536).startswith(b"HTTP/1.1 503 ")
        flood = held.enter_context(connect(capped))
        assert read_until_closed(flood) == b""


# ------------------------------------------------------------------------- Nagle


def test_connections_on_a_socket_bound_without_ipproto_tcp_send_without_nagle() -> None:
    # bound as uvicorn's --workers does (Config.bind_socket: no proto), for which asyncio
    # would leave Nagle's algorithm on and a response's body would wait for a delayed ACK
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = build_server(Settings(port=port, log_level="warning"), tiny_app())
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_until("the server to start", lambda: server.started or not thread.is_alive(), WAIT)
        with connect(port) as client:
            client.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(client).startswith(b"HTTP/1.1 200")
            (served,) = server.server_state.connections
            accepted = served.transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.should_exit = True
        thread.join(WAIT)
        listener.close()
