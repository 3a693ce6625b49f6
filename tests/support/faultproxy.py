"""A TCP proxy on loopback that can make the apiserver slow or unreachable without touching it.

The service is pointed at the proxy through a copy of the kubeconfig (TLS passes through
untouched: the apiserver's serving certificate names 127.0.0.1, whatever the port). Faults:

* ``paused`` - every connection, old and new, stops passing bytes in both directions (a
  network partition: connects succeed, TLS handshakes and requests hang); bytes already read
  are delivered, in order, when it is lifted;
* ``delay`` - each chunk waits this long before it is passed on (a slow apiserver or link);
* ``cut()`` - close every open connection at once (a broken link).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import yaml


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self.delay = 0.0
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kubeconfig(self, original: Path, into: Path) -> Path:
        """A copy of ``original`` whose clusters all point at the proxy."""
        config = yaml.safe_load(original.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        into.write_text(yaml.safe_dump(config))
        into.chmod(0o600)
        return into

    @property
    def paused(self) -> bool:
        return not self._open.is_set()

    @paused.setter
    def paused(self, value: bool) -> None:
        if value:
            self._open.clear()
        else:
            self._open.set()

    def cut(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()
        self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the pumps

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()  # the apiserver is down: refuse as it would
                continue
            upstream.settimeout(None)
            with self._lock:
                # close() may have cut the connections while this one was being made: it would
                # outlive the proxy, open, until a garbage collection warned of both sockets
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                while not self._open.wait(0.1):
                    if self._closed:
                        return
                if self.delay:
                    time.sleep(self.delay)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
