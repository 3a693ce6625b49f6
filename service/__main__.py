"""``python -m service``: serve on the configured host and port (env ``PORT`` honoured)."""

from __future__ import annotations

import logging

import uvicorn

from service.config import get_settings
from service.main import create_app


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws="none",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
