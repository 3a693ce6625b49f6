"""A scripted stand-in for crr-gateway's HTTP surface, on 127.0.0.1, for testing the command
line: the test says what each request gets, the fake records what arrived. It knows nothing of
Kubernetes; the CLI's end-to-end tests run against the real service."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: int  # the client's port: one per connection

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    events: Sequence[bytes] | None = None  # a chunked text/event-stream, one chunk each
    end_stream: bool = True  # False: cut the stream without its last chunk

    @classmethod
    def problem(cls, status: int, detail: str, **extra: Any) -> Reply:
        body = {"type": "about:blank", "title": "Problem", "status": status, "detail": detail}
        return cls(status, {**body, **extra}, {"Content-Type": "application/problem+json"})


Script = Callable[[Seen], Reply]


class FakeGateway:
    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    self.client_address[1],
                )
                with gateway._lock:
                    gateway.seen.append(seen)
                reply = gateway.script(seen)
                if reply.drop:
                    self.close_connection = True
                    return
                if reply.events is not None:
                    self._stream(reply)
                    return
                body = reply.body
                if isinstance(body, dict):
                    body = json.dumps(body).encode()
                body = body or b""
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in reply.events or ():
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                if reply.end_stream:
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "http" if tls is None else "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeGateway:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def requests(self, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]


def restart_doc(
    name: str = "web-0-x7k2p",
    *,
    rv: str = "1",
    phase: str = "Pending",
    result: str | None = None,
    failure: str | None = None,
    message: str | None = None,
    states: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A restart as the API returns it (only the fields the CLI reads are meaningful)."""
    return {
        "name": name,
        "namespace": "demo",
        "pod": "web-0",
        "containers": ["nginx", "sidecar"],
        "phase": phase,
        "finished": result is not None,
        "result": result,
        "failureReason": failure,
        "message": message,
        "containerStates": [
            {"name": n, "phase": p, "isKilled": p != "Pending", "message": None} for n, p in states
        ],
        "warnings": [],
        "resourceVersion": rv,
    }


def rollout_doc(
    name: str = "shop-7x2k",
    *,
    rv: str = "1",
    phase: str = "Progressing",
    pods: Sequence[tuple[str, str]] = (("shop-a", "Waiting"), ("shop-b", "Waiting")),
    unavailable: int = 0,
    budget: int = 1,
    message: str = "",
) -> dict[str, Any]:
    states = [state for _, state in pods]
    return {
        "name": name,
        "namespace": "demo",
        "target": {"kind": "CloneSet", "name": "shop", "apiVersion": "apps.kruise.io/v1alpha1"},
        "selector": None,
        "containers": None,
        "maxUnavailable": budget,
        "resolvedMaxUnavailable": budget,
        "phase": phase,
        "finished": phase in ("Succeeded", "Failed", "Cancelled"),
        "pods": [
            {"pod": pod, "state": state, "restart": None, "message": ""} for pod, state in pods
        ],
        "counts": {s: states.count(s) for s in ("Waiting", "Restarting", "Succeeded", "Failed")},
        "unavailable": unavailable,
        "message": message,
        "resourceVersion": rv,
    }
