"""``tests.support.faultproxy.FaultProxy``: once closed it leaves no connection open, not even
one it was still making as it closed (left open, both of its sockets would be finalized by a
later garbage collection, with ResourceWarnings that fail whichever test is running then)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from tests.support.faultproxy import FaultProxy

WAIT = 10.0


def test_a_connection_made_while_the_proxy_closes_is_closed_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as apiserver:  # its backlog answers connects
        proxy = FaultProxy(apiserver.getsockname()[1])
        cut = threading.Event()
        cut_connections = proxy.cut

        def cut_and_tell() -> None:
            cut_connections()
            cut.set()

        connect = socket.create_connection
        connecting = threading.Event()

        def connect_upstream_after_the_cut(address: Any, timeout: Any) -> socket.socket:
            connecting.set()
            cut.wait(WAIT)  # the proxy's upstream connect is slower than its close
            return connect(address, timeout)

        monkeypatch.setattr(proxy, "cut", cut_and_tell)
        monkeypatch.setattr(socket, "create_connection", connect_upstream_after_the_cut)
        with connect(("127.0.0.1", proxy.port), timeout=WAIT) as client:
            assert connecting.wait(WAIT)
            proxy.close()
            assert cut.is_set()
            # the proxy's end of this connection is closed, not left to its pumps
            assert client.recv(1) == b""
