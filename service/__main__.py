"""``python -m service``: serve on the configured host and port (env ``PORT`` honoured), over
HTTPS when given a certificate (``service.edge``)."""

from __future__ import annotations

import gc
import logging
import socket

from service.app import create_app
from service.config import get_settings
from service.edge.server import GatewayServer, build_server, raise_open_files_limit
from service.edge.tls import TLSFilesError

# Young collections every 50,000 net allocations instead of 700. With ten thousand followers
# connected (bench section 4b), the defaults ran 19 full collections of up to 820 ms each in one
# run, 5.7 s in all; frozen start-up plus this: none after start-up, the longest pause 197 ms
# (a middle collection), at about 50 MiB more RSS (BENCHMARKS.md, "Followers").
GEN0_THRESHOLD = 50_000


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    app = create_app(settings)
    try:
        server = build_server(settings, app)
    except TLSFilesError as error:
        raise SystemExit(f"crr-gateway: cannot serve HTTPS: {error}") from None
    raise_open_files_limit(settings.max_connections)
    _freeze_after_startup(server)
    server.run()


def _freeze_after_startup(server: GatewayServer) -> None:
    """Once the app has started (modules, settings, the caches' first listings), move every
    object alive to the collector's permanent generation and make young collections rarer.

    A full collection walks every tracked object; before this, one landing in the middle of a
    fan-out to ten thousand followers took 1.7 s of the event loop instead of about 50 ms
    (BENCHMARKS.md, "Followers"). What start-up made lives as long as the process, so the
    collector has nothing to find there."""
    startup = server.startup

    async def startup_then_freeze(sockets: list[socket.socket] | None = None) -> None:
        await startup(sockets)
        gc.collect()  # what start-up left as garbage goes now, not into the frozen set
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)

    server.startup = startup_then_freeze  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
