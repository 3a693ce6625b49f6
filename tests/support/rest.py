"""Plain JSON over HTTPS to the test apiserver, without the client library: tests that state
the exact status the apiserver answered use it (deploy/, RBAC and the callers' matrix)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import urllib3

from harness.controlplane import ControlPlane

Obj = dict[str, Any]


class Rest:
    """Plain JSON over HTTPS to the test apiserver as one identity: a bearer token, or the
    admin's client certificate. Answers are (HTTP status, decoded body), so a test states the
    exact status the apiserver gave."""

    def __init__(self, plane: ControlPlane, token: str | None = None) -> None:
        pki = plane.pki
        self.url = plane.url
        self.headers = {"Accept": "application/json"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        self.pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(pki.ca_cert),
            cert_file=None if token else str(pki.admin_cert),
            key_file=None if token else str(pki.admin_key),
        )

    def open(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        content_type: str = "application/json",
        stream: bool = False,
        **query: str,
    ) -> urllib3.BaseHTTPResponse:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        return self.pool.request(
            method,
            self.url + path + (f"?{urlencode(query)}" if query else ""),
            body=None if body is None else json.dumps(body),
            headers=headers,
            preload_content=not stream,
            timeout=urllib3.Timeout(connect=5, read=30),
            retries=False,
        )

    def call(self, method: str, path: str, body: Obj | None = None, **kw: Any) -> tuple[int, Obj]:
        response = self.open(method, path, body, **kw)
        decoded: Obj = json.loads(response.data) if response.data else {}
        return response.status, decoded

    def ok(self, method: str, path: str, body: Obj | None = None, **kw: Any) -> Obj:
        status, answer = self.call(method, path, body, **kw)
        assert 200 <= status < 300, f"{method} {path}: {status} {answer.get('message')}"
        return answer

    def close(self) -> None:
        self.pool.clear()
