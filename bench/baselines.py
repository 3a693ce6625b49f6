"""``python -m bench.baselines KIND``: what a status poll is measured against, served exactly as
``python -m service`` serves (``service.edge.server.build_server`` with the same settings from
the environment: the same uvicorn, event loop, protocol, connection guard and limits).

KIND is one of:

* ``raw``: a raw ASGI callable answering fixed bytes (the server's own limit);
* ``fastapi``: a bare FastAPI route with two untyped path parameters answering fixed bytes (the
  limit of any FastAPI route);
* ``routes``: the service itself without its fast path for cached reads (every request through
  FastAPI's routes and dependencies: the service before ``service.http.fast_reads``);
* ``service``: the service as ``python -m service`` runs it.

``--workers N`` runs N processes on one listening socket, each a whole service (its own
watches and caches), as uvicorn's ``--workers`` does.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from service.app import create_app
from service.config import Settings, get_settings
from service.edge.server import build_server, raise_open_files_limit

KINDS = ("raw", "fastapi", "routes", "service")
BODY_BYTES = 964  # the size of the polled restart's JSON in the bench (BENCHMARKS.md)
_BODY = (b'{"pad":"' + b"x" * BODY_BYTES)[: BODY_BYTES - 2] + b'"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]


async def raw_app(scope: dict[str, Any], receive: Callable[..., Any], send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/namespaces/{namespace}/restarts/{name}")
    async def poll(namespace, name):  # type: ignore[no-untyped-def]  # untyped, as measured
        return Response(_BODY, media_type="application/json")

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(b"ok")

    return app


def build_app(kind: str, settings: Settings) -> Any:
    if kind == "raw":
        raw_app.state = SimpleNamespace(services=None)  # type: ignore[attr-defined]
        return raw_app
    if kind == "fastapi":
        return fastapi_app()
    return create_app(settings, fast_reads=kind == "service")


def serve(kind: str, settings: Settings, sock: socket.socket | None = None) -> None:
    server = build_server(settings, build_app(kind, settings))
    raise_open_files_limit(settings.max_connections)
    server.run(sockets=[sock] if sock is not None else None)


def serve_workers(kind: str, settings: Settings, workers: int) -> None:
    """``workers`` processes on one socket (bound here, inherited by fork)."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and uvicorn's
    # own --workers socket (``Config.bind_socket``) does not, which leaves Nagle's algorithm
    # on: a response written as headers then body waits for a delayed ACK (about 40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=serve, args=(kind, settings, sock)) for _ in range(workers)]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = get_settings()
    if args.workers > 1:
        serve_workers(args.kind, settings, args.workers)
    else:
        serve(args.kind, settings)


if __name__ == "__main__":
    main()
