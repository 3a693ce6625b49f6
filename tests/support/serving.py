"""Run the app on a loopback port in a background thread (tests, local tooling): the real
uvicorn server, so long polls and server-sent events behave as in production."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from service.app import begin_shutdown


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ClosingServer(uvicorn.Server):
    """uvicorn's server, which also closes the connections its shutdown left open.

    uvicorn asks the connections it knows of to close when its shutdown starts; one accepted in
    the same loop turn is not among them yet (its protocol is made a turn later), stays open
    past the grace period, and is still open when the loop closes. Its asyncio transport holds
    a reference to itself, so only a later full garbage collection finalizes it and its socket:
    "unclosed transport" and "unclosed <socket.socket ...>" ResourceWarnings, errors under
    pytest's filterwarnings, in whichever test happens to run that collection."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        for connection in list(self.server_state.connections):
            connection.transport.close()
        await asyncio.sleep(0)  # their connection_lost runs (and closes the socket) now


@contextmanager
def serve(app: FastAPI, *, port: int | None = None, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` (lifespan included) until the block ends; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        ws="none",
        log_level="warning",
        access_log=False,
        loop="asyncio",  # as `python -m service` runs by default
        timeout_keep_alive=app.state.settings.keep_alive_seconds,
        timeout_graceful_shutdown=3,
    )
    server = ClosingServer(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the service failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the service did not start in time")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        begin_shutdown(app)  # long polls and event streams end now, as on SIGTERM
        server.should_exit = True
        thread.join(30)
