"""401 before 403: a caller without a valid token gets the same 401 in every namespace, so it
cannot map which ones the service serves; only an authenticated caller learns that one is not
served. Static tokens over the real app and uvicorn (the Kubernetes mode: the integration
tests)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from tests.support.auth import assert_problem, bearer, new_token, tokens_file
from tests.support.fake_kube import FakeKube
from tests.support.serving import serve

TOKEN = new_token()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path = tokens_file(
        tmp_path_factory.mktemp("tokens") / "tokens.yaml",
        {TOKEN: {"user": "portal", "namespaces": ["*"]}},
    )
    app = create_app(
        Settings(namespaces=["served"], auth_mode="static", auth_tokens_file=path),
        kube_factory=lambda _settings: FakeKube(),
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


REQUESTS = [
    ("GET", "/v1/namespaces/{ns}/restarts"),
    ("GET", "/v1/namespaces/{ns}/restarts/web-0-abcde"),
    ("DELETE", "/v1/namespaces/{ns}/restarts/web-0-abcde"),
    ("POST", "/v1/namespaces/{ns}/restarts"),
]


@pytest.mark.parametrize("token", [None, "garbage", "x" * 20_000], ids=["none", "garbage", "long"])
@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=[f"{m} {p}" for m, p in REQUESTS])
def test_no_valid_token_is_401_in_served_and_unserved_namespaces_alike(
    client: httpx.Client, token: str | None, method: str, path: str
) -> None:
    answers = []
    for namespace in ("served", "kube-system"):
        response = client.request(
            method,
            path.format(ns=namespace),
            headers=bearer(token),
            json={"pod": "web-0"} if method == "POST" else None,
        )
        body = assert_problem(response, 401, "unauthenticated")
        answers.append((body["detail"], response.headers["www-authenticate"]))
    assert answers[0] == answers[1]


def test_an_authenticated_caller_learns_a_namespace_is_not_served(client: httpx.Client) -> None:
    response = client.get("/v1/namespaces/kube-system/restarts", headers=bearer(TOKEN))
    body = assert_problem(response, 403, "namespace-not-served")
    assert body["detail"] == "namespace kube-system is not served by this service"
    assert client.get("/v1/namespaces/served/restarts", headers=bearer(TOKEN)).status_code == 200
