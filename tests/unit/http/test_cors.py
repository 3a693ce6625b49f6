"""CORS for browser portals, through the real app and uvicorn: off by default; with an
allowlist, preflights answered without a token and every answer to an allowed origin (errors
included) readable by the page; other origins get no CORS headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from service.app import create_app
from service.config import Settings
from service.core.errors import KubeNotFound
from service.core.objects import KubeObject
from tests.support.auth import assert_problem, new_token, tokens_file
from tests.support.fake_kube import FakeKube
from tests.support.serving import serve

PORTAL = "https://portal.example.com"
OTHER = "https://evil.example.net"
URL = "/v1/namespaces/ns/restarts"
EXPOSED = {"location", "warning", "x-request-id", "retry-after"}


class PortalKube(FakeKube):
    """No restart to delete; reading a pod fails unexpectedly (a create answers 500)."""

    def delete_crr(
        self, namespace: str, name: str, *, resource_version: str | None = None
    ) -> KubeObject:
        raise KubeNotFound(f"containerrecreaterequests {name} not found")

    def get_pod(self, namespace: str, name: str) -> KubeObject:
        raise RuntimeError("boom")


@contextmanager
def service(tmp_path: Path, cors_origins: str = "") -> Iterator[httpx.Client]:
    token = new_token()
    path = tokens_file(tmp_path / "tokens.yaml", {token: {"user": "portal", "namespaces": ["ns"]}})
    app = create_app(
        Settings(
            namespaces=["ns"],
            auth_mode="static",
            auth_tokens_file=path,
            cors_origins=cors_origins,  # comma separated, as in the environment
        ),
        kube_factory=lambda _settings: PortalKube(),
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def preflight(client: httpx.Client, origin: str, method: str, headers: str) -> httpx.Response:
    return client.options(
        URL + "/web-0-abcde",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
            "Authorization": "",  # a browser's preflight never carries the token
        },
    )


def exposed(response: httpx.Response) -> set[str]:
    value = response.headers.get("access-control-expose-headers", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    with service(tmp_path) as client:
        response = client.get(URL, headers={"Origin": PORTAL})
        assert response.status_code == 200, response.text
        assert "access-control-allow-origin" not in response.headers
        refused = preflight(client, PORTAL, "POST", "authorization")
        assert "access-control-allow-origin" not in refused.headers
        assert_problem(refused, 405)


def test_an_allowed_origin_reads_answers_and_their_headers(tmp_path: Path) -> None:
    with service(tmp_path, cors_origins=f"{PORTAL},http://localhost:3000") as client:
        response = client.get(URL, headers={"Origin": PORTAL})
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == PORTAL
        assert "Origin" in response.headers["vary"]
        assert exposed(response) == EXPOSED
        assert "access-control-allow-credentials" not in response.headers
        # a request without an Origin (curl, a backend) is answered as before
        plain = client.get(URL)
        assert plain.status_code == 200
        assert "access-control-allow-origin" not in plain.headers


def test_a_preflight_is_answered_without_a_token(tmp_path: Path) -> None:
    with service(tmp_path, cors_origins=PORTAL) as client:
        response = preflight(
            client, PORTAL, "POST", "authorization, content-type, idempotency-key, x-request-id"
        )
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == PORTAL
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert methods == {"GET", "POST", "DELETE"}
        allowed = response.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "idempotency-key", "last-event-id"):
            assert header in allowed
        assert int(response.headers["access-control-max-age"]) > 0


def test_a_preflight_for_delete(tmp_path: Path) -> None:
    with service(tmp_path, cors_origins=PORTAL) as client:
        response = preflight(client, PORTAL, "DELETE", "authorization")
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == PORTAL
        assert "DELETE" in response.headers["access-control-allow-methods"]
        # and the delete itself, from the page, can read the answer (a 404 here)
        deleted = client.delete(URL + "/web-0-abcde", headers={"Origin": PORTAL})
        assert_problem(deleted, 404, "restart-not-found")
        assert deleted.headers["access-control-allow-origin"] == PORTAL


def test_a_disallowed_origin_gets_no_cors_headers(tmp_path: Path) -> None:
    with service(tmp_path, cors_origins=PORTAL) as client:
        response = client.get(URL, headers={"Origin": OTHER})
        assert response.status_code == 200  # the browser, not the server, withholds it
        assert "access-control-allow-origin" not in response.headers
        refused = preflight(client, OTHER, "DELETE", "authorization")
        body = assert_problem(refused, 400)
        assert "origin" in body["detail"]
        assert "access-control-allow-origin" not in refused.headers
        # an allowed origin asking for a method or header the API does not take
        put = assert_problem(preflight(client, PORTAL, "PUT", "authorization"), 400)
        assert "method" in put["detail"]
        odd = assert_problem(preflight(client, PORTAL, "POST", "x-custom"), 400)
        assert "headers" in odd["detail"]


def test_errors_to_an_allowed_origin_carry_cors_headers(tmp_path: Path) -> None:
    with service(tmp_path, cors_origins=PORTAL) as client:
        origin = {"Origin": PORTAL}
        unauthenticated = client.get(URL, headers={**origin, "Authorization": "Bearer garbage"})
        assert_problem(unauthenticated, 401, "unauthenticated")
        assert unauthenticated.headers["access-control-allow-origin"] == PORTAL
        assert exposed(unauthenticated) == EXPOSED
        too_large = client.post(
            URL,
            content=b"{" + b" " * 70_000 + b"}",
            headers={**origin, "Content-Type": "application/json"},
        )
        assert_problem(too_large, 413)
        assert too_large.headers["access-control-allow-origin"] == PORTAL
        invalid = client.post(URL, json={"pod": "web-0", "containers": []}, headers=origin)
        assert_problem(invalid, 422, "invalid-request")
        assert invalid.headers["access-control-allow-origin"] == PORTAL


def test_a_crash_answered_to_an_allowed_origin_carries_cors_headers() -> None:
    app = create_app(
        Settings(namespaces=["ns"], auth_mode="none", cors_origins=PORTAL),
        kube_factory=lambda _settings: PortalKube(),
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        response = client.post(URL, json={"pod": "web-0"}, headers={"Origin": PORTAL})
    assert_problem(response, 500)
    assert response.headers["access-control-allow-origin"] == PORTAL
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("origins", "says"),
    [
        ("*", "list each portal's origin"),
        ("null", "list each portal's origin"),
        ("portal.example.com", "not an origin"),
        ("https://*.example.com", "not an origin"),
        ("ftp://portal.example.com", "not an origin"),
        ("https://portal.example.com/", "write 'https://portal.example.com'"),
        ("https://Portal.Example.com", "write 'https://portal.example.com'"),
        ("https://portal.example.com:443", "write 'https://portal.example.com'"),
        (f"{PORTAL},https://portal.example.com/app", "write 'https://portal.example.com'"),
    ],
)
def test_the_allowlist_takes_exact_origins_only(origins: str, says: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(cors_origins=origins)
    assert says in str(error.value)


def test_the_allowlist_reads_a_comma_separated_list() -> None:
    settings = Settings(cors_origins=f" {PORTAL} , http://localhost:3000,https://[::1]:8443")
    assert settings.cors_origins == ["http://localhost:3000", "https://[::1]:8443", PORTAL]
    assert Settings().cors_origins == []
