"""The uvicorn server that ``python -m service`` runs: the app, HTTPS when configured, the
connection limits, and a drain on SIGTERM.

``build_server`` checks what can only be checked by loading it (the certificate and key) before
anything listens, so a bad file stops the start with a precise message instead of failing
every handshake later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import socket
import ssl
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service.app import begin_shutdown
from service.config import Settings
from service.edge.connections import LINGERING_MAX, ConnectionGuard, guarded_http_protocol
from service.edge.tls import ReloadingCertificate, TLSFiles

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 10
SPARE_FILE_DESCRIPTORS = 512
"""Beyond the served and refused connections: those still in their TLS handshake, the
apiserver connections, logs."""


class GatewayServer(uvicorn.Server):
    """uvicorn's server, which drains on SIGTERM/SIGINT and bounds TLS handshakes."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, *, handshake_timeout: float) -> None:
        super().__init__(config)
        self._app = app
        self._handshake_timeout = handshake_timeout

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # First wake the long polls and event streams (they answer and end), then shut down as
        # uvicorn does: in-flight creates and deletes finish, within the grace period.
        begin_shutdown(self._app)
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.config.ssl is None:
            await super().startup(sockets)
            return
        # uvicorn calls loop.create_server(..., ssl=...) without ssl_handshake_timeout, so a
        # client that connects and never completes its handshake would hold a socket for
        # asyncio's default of 60 s before the header deadline (which starts after the
        # handshake) applies. Bound it by the header deadline: the server's create_server
        # call, and only it, gets the argument. uvloop's loop takes no attribute; it keeps
        # its own 60 s.
        loop = asyncio.get_running_loop()
        bounded = functools.partial(
            loop.create_server, ssl_handshake_timeout=self._handshake_timeout
        )
        try:
            setattr(loop, "create_server", bounded)  # noqa: B010 (a method of this loop only)
        except AttributeError:
            log.info("TLS handshakes bounded by the event loop's default (60 s)")
            await super().startup(sockets)
            return
        try:
            await super().startup(sockets)
        finally:
            delattr(loop, "create_server")


def build_server(settings: Settings, app: FastAPI) -> GatewayServer:
    """The server for ``app``. Raises ``service.edge.tls.TLSFilesError`` when the certificate
    or key cannot serve."""
    certificate: ReloadingCertificate | None = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        files = TLSFiles(cert=settings.tls_cert_file, key=settings.tls_key_file)
        certificate = ReloadingCertificate(files, settings.tls_min_version)
    guard = ConnectionGuard(
        header_timeout=settings.header_timeout_seconds, max_connections=settings.max_connections
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        loop=settings.event_loop,
        http=guarded_http_protocol(guard),
        timeout_keep_alive=settings.keep_alive_seconds,
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ssl_context_factory=_fixed_context(certificate.context) if certificate else None,
    )
    return GatewayServer(config, app, handshake_timeout=settings.header_timeout_seconds)


def raise_open_files_limit(max_connections: int) -> None:
    """Raise the soft open-files limit to the hard one, as Go programs do at start: container
    runtimes often start processes with a soft limit of 1024 and a far higher hard one, and the
    cap (``service.edge.connections``) is only worth something if the process can reach it.
    Warn when even the hard limit leaves too little room."""
    needed = max_connections + LINGERING_MAX + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < needed:
        log.warning(
            "open files limited to %d, fewer than the %d that CRR_GATEWAY_MAX_CONNECTIONS=%d "
            "may need: lower it, or raise the container's limit",
            hard,
            needed,
            max_connections,
        )


def _fixed_context(
    context: ssl.SSLContext,
) -> Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]:
    """uvicorn's hook for a context built elsewhere (it would otherwise load the files once)."""

    def factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    return factory
