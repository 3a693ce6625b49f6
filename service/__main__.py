"""``python -m service``: serve on the configured host and port (env ``PORT`` honoured)."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.app import begin_shutdown, create_app
from service.config import get_settings

GRACEFUL_SHUTDOWN_SECONDS = 10


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, first wake the long polls and event streams (they answer and end),
    then shut down as uvicorn does: in-flight creates and deletes finish, within the grace."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        begin_shutdown(self._app)
        super().handle_exit(sig, frame)


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        loop=settings.event_loop,
        timeout_keep_alive=settings.keep_alive_seconds,
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    DrainingServer(config, app).run()


if __name__ == "__main__":
    main()
