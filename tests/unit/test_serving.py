"""``tests.support.serving.serve``: a stopped in-process service leaves no connection open (one
left open is an asyncio transport that only a later garbage collection finalizes, with a
ResourceWarning that fails whichever test happens to run that collection)."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import httpx
from fastapi import FastAPI

from tests.support.serving import serve

WAIT = 10.0
UVICORN_TICK = 0.1  # uvicorn's main loop looks at should_exit this often


class ShutdownSignal:
    """Stands in for the app's namespace watches: ``serve`` drains them just before it tells
    uvicorn to exit."""

    def __init__(self) -> None:
        self.begun = threading.Event()

    def drain_threadsafe(self) -> None:
        self.begun.set()


def test_a_connection_accepted_as_the_shutdown_starts_is_closed_too() -> None:
    shutdown = ShutdownSignal()
    entered = threading.Event()
    app = FastAPI()
    app.state.settings = SimpleNamespace(keep_alive_seconds=5)
    app.state.namespace_watches = shutdown

    @app.get("/hold-the-loop")
    async def hold_the_loop() -> dict[str, bool]:
        # Blocks the event loop on purpose: the late connection waits in the listen backlog,
        # and once the loop runs again uvicorn accepts it in the same turn as the tick that
        # sees should_exit (overdue by then), so its shutdown does not know the connection yet.
        entered.set()
        assert shutdown.begun.wait(WAIT)
        time.sleep(2 * UVICORN_TICK)  # serve() sets should_exit right after draining
        return {"held": True}

    answers: list[int] = []

    def ask(url: str) -> None:
        answers.append(httpx.get(url + "/hold-the-loop", timeout=WAIT).status_code)

    with serve(app) as url:
        holder = threading.Thread(target=ask, args=(url,))
        holder.start()
        assert entered.wait(WAIT)
        host, port = url.removeprefix("http://").split(":")
        late = socket.create_connection((host, int(port)), timeout=WAIT)
    holder.join(WAIT)
    with late:
        # the server is gone: the late connection must have been closed, not abandoned open
        assert late.recv(1) == b""
    assert answers == [200]
