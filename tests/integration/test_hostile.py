"""Hand-written hostile input against the running service on the real control plane: each is a
clear 4xx (problem+json whenever the request reaches the app), and nothing is created or
deleted in the cluster."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from service.app import create_app
from tests.support.api import PROBLEM, crrs_in, follow, restarts_url
from tests.support.pods import MakePod
from tests.support.service_process import open_settings
from tests.support.serving import serve
from tests.support.waiting import wait_until

MAX_BODY = 64 * 1024


@pytest.fixture
def hostile(
    control_plane: ControlPlane, namespace: str, make_pod: MakePod
) -> Iterator[tuple[httpx.Client, str]]:
    """The service, a pod, and one finished restart (``victim``) that must survive."""
    make_pod("web-0", ["app", "sidecar"])
    with ExitStack() as stack:
        settings = open_settings(control_plane.kubeconfig, [namespace], max_body_bytes=MAX_BODY)
        url = stack.enter_context(serve(create_app(settings)))
        api = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        wait_until("the service to be ready", lambda: api.get("/readyz").status_code == 200)
        created = api.post(restarts_url(namespace), json={"pod": "web-0", "name": "victim"})
        assert created.status_code == 201, created.text
        follow(api, namespace, "victim")
        yield api, url


def refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"]
    return body


def raw_request(url: str, request: bytes) -> tuple[int, bytes]:
    """Send bytes no HTTP client would send; the status and body of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def assert_untouched(kube: k8s.ApiClient, namespace: str) -> None:
    assert [c["metadata"]["name"] for c in crrs_in(kube, namespace)] == ["victim"]


def test_huge_bodies_are_refused_with_413(
    hostile: tuple[httpx.Client, str], kube: k8s.ApiClient, namespace: str
) -> None:
    api, _ = hostile
    url = restarts_url(namespace)
    big = b'{"pod": "web-0", "reason": "' + b"x" * (MAX_BODY + 1) + b'"}'
    body = refused(api.post(url, content=big, headers={"content-type": "application/json"}), 413)
    assert str(MAX_BODY) in body["detail"]
    refused(api.post(url, content=b"[" + b" " * (10 * 1024 * 1024) + b"]"), 413)

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"pod": "web-0", "reason": "'
        for _ in range(100):
            yield b"y" * 4096
        yield b'"}'

    refused(api.post(url, content=chunked(), headers={"content-type": "application/json"}), 413)
    assert_untouched(kube, namespace)


def test_malformed_json_is_a_4xx(
    hostile: tuple[httpx.Client, str], kube: k8s.ApiClient, namespace: str
) -> None:
    api, _ = hostile
    url = restarts_url(namespace)
    json_type = {"content-type": "application/json"}
    deep_array = b"[" * 30000 + b"]" * 30000
    deep_object = b'{"pod": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"
    for content in (
        deep_array,
        deep_object,
        b'{"pod": "web-0\xff\xfe"}',  # invalid UTF-8
        b"\xef\xbb\xbf\xff",
        b'{"pod": "web-0", "activeDeadlineSeconds": NaN}',
        b'{"pod": "web-0", "activeDeadlineSeconds": 1e400}',
        b'{"pod": "web-0", "activeDeadlineSeconds": ' + b"9" * 5000 + b"}",
        b'{"pod": "web-0", "pod": "web-0", "containers": {"0": "app"}}',
        b"[]",
        b'"web-0"',
        b"null",
        b"{",
        b"\x00" * 100,
    ):
        refused(api.post(url, content=content, headers=json_type), 400, 422)
    assert_untouched(kube, namespace)


def test_wrong_content_types_are_refused_with_415(
    hostile: tuple[httpx.Client, str], kube: k8s.ApiClient, namespace: str
) -> None:
    api, _ = hostile
    url = restarts_url(namespace)
    body = b'{"pod": "web-0"}'
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        "",
    ):
        response = api.post(url, content=body, headers={"content-type": content_type})
        problem = refused(response, 415)
        assert "application/json" in problem["detail"]
    refused(api.post(url, data={"pod": "web-0"}), 415)  # a form
    assert_untouched(kube, namespace)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_odd_names_in_paths_are_refused(
    hostile: tuple[httpx.Client, str], kube: k8s.ApiClient, namespace: str, method: str
) -> None:
    api, url = hostile
    base = restarts_url(namespace)
    for name in (
        "%2E",  # ".": the apiserver path would lose its last segment (the whole collection)
        "%2E%2E",
        ".%2E",
        "..%2F..%2Fpods",
        "victim%00",
        "victim%20",
        "VICTIM",
        "r%C3%A9start",  # é
        "%E9%87%8D%E5%90%AF",  # unicode
        "a" * 254,
        "a_b",
        "-victim",
        "%ff",
    ):
        status, body = raw_request(
            url,
            f"{method} {base}/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        )
        assert status in (404, 422), (name, status, body[:300])
        assert b'"status":' in body, (name, body[:300])
    for bad_namespace in ("%2E%2E", "kube_system", "Default", "a" * 64):
        response = api.get(f"/v1/namespaces/{bad_namespace}/restarts")
        refused(response, 404, 422)
    assert api.get(restarts_url(namespace), params={"pod": "../../etc"}).json()["items"] == []
    assert_untouched(kube, namespace)


def test_odd_names_in_bodies_are_refused(
    hostile: tuple[httpx.Client, str], kube: k8s.ApiClient, namespace: str
) -> None:
    api, _ = hostile
    url = restarts_url(namespace)
    for body in (
        {"pod": "../web-0"},
        {"pod": "web-0/../web-0"},
        {"pod": "."},
        {"pod": ".."},
        {"pod": "WEB-0"},
        {"pod": "wéb-0"},
        {"pod": "web-0\u0000"},
        {"pod": "a" * 254},
        {"pod": "web-0", "name": ".."},
        {"pod": "web-0", "name": "x/y"},
        {"pod": "web-0", "containers": ["../app"]},
        {"pod": "web-0", "containers": ["app\r\nX: y"]},
        {"pod": "web-0", "containers": ["a" * 254]},
        {"pod": "web-0", "containers": ["app"] * 257},
        {"pod": "web-0", "reason": "r" * 257},
    ):
        refused(api.post(url, json=body), 404, 422)
    assert_untouched(kube, namespace)


def test_hostile_idempotency_keys_are_refused(
    hostile: tuple[httpx.Client, str], kube: k8s.ApiClient, namespace: str
) -> None:
    api, url = hostile
    base = restarts_url(namespace)
    body = {"pod": "web-0"}
    for key in (
        b"k" * 256,  # too long
        "ключ".encode(),  # not ASCII
        b"caf\xe9",  # latin-1
        b"a\tb",
        b"",
    ):
        headers = [(b"Idempotency-Key", key)]
        problem = refused(api.post(base, json=body, headers=headers), 422)
        assert "Idempotency-Key" in problem["detail"], problem
    # bytes the HTTP parser itself refuses (clients cannot even send them): 400
    payload = b'{"pod": "web-0"}'
    for key in (b"a\x00b", b"a\x01b", b"a\rb", b"a\x7fb"):
        request = (
            f"POST {base} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\nIdempotency-Key: ".encode()
            + key
            + b"\r\n\r\n"
            + payload
        )
        status, answer = raw_request(url, request)
        assert status in (400, 422), (key, status, answer[:300])
    assert_untouched(kube, namespace)
