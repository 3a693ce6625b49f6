"""``python -m service``: serve on the configured host and port (env ``PORT`` honoured), over
HTTPS when given a certificate (``service.edge``)."""

from __future__ import annotations

import logging

from service.app import create_app
from service.config import get_settings
from service.edge.server import build_server, raise_open_files_limit
from service.edge.tls import TLSFilesError


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
    server.run()


if __name__ == "__main__":
    main()
