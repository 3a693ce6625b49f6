"""Callers in ``static`` mode (a tokens file, as mounted from a Secret) and the ``none`` mode's
refusal off loopback, on the real control plane: the same matrix as in kubernetes mode, the
file's namespaces deciding."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.app import create_app
from service.config import Settings
from tests.support.auth import (
    assert_problem,
    bearer,
    ensure_namespace,
    ensure_service_account,
    mint,
    new_token,
    run_pod,
    running_service,
    tokens_file,
)
from tests.support.rest import Rest
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class World:
    a: str
    b: str
    file: Path
    tokens: dict[str, str | None]


@pytest.fixture(scope="module")
def world(admin: Rest, _simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> World:
    tag = secrets.token_hex(3)
    a, b = f"static-a-{tag}", f"static-b-{tag}"
    for name in (a, b):
        ensure_namespace(admin, name)
        run_pod(admin, name, "web-0", ["app"])
    ensure_service_account(admin, a, "someone")
    alice, bob, ops = new_token(), new_token(), new_token()
    path = tokens_file(
        tmp_path_factory.mktemp("static") / "tokens.yaml",
        {
            alice: {"user": "alice", "groups": ["team-a"], "namespaces": [a]},
            bob: {"user": "bob", "groups": [], "namespaces": []},
            ops: {"user": "ops", "groups": ["oncall"], "namespaces": ["*"]},
        },
    )
    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "not-a-token",
        # a perfectly valid Kubernetes token means nothing to a static gateway
        "kubernetes-token": mint(admin, a, "someone"),
        "alice": alice,
        "bob": bob,
        "ops": ops,
    }
    return World(a, b, path, tokens)


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane, world: World) -> Iterator[httpx.Client]:
    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[world.a, world.b],
        auth_mode="static",
        auth_tokens_file=world.file,
    )
    with running_service(settings) as client:
        yield client


def create(api: httpx.Client, namespace: str, token: str | None, pod: str) -> httpx.Response:
    return api.post(
        f"/v1/namespaces/{namespace}/restarts", json={"pod": pod}, headers=bearer(token)
    )


DENIED = [
    ("none", "a", 401, "unauthenticated"),
    ("garbage", "a", 401, "unauthenticated"),
    ("kubernetes-token", "a", 401, "unauthenticated"),
    ("bob", "a", 403, "caller-forbidden"),
    ("alice", "b", 403, "caller-forbidden"),
]


@pytest.mark.parametrize(
    ("who", "where", "status", "slug"), DENIED, ids=[f"{w}-in-{n}" for w, n, _, _ in DENIED]
)
def test_static_denials_reveal_nothing_about_the_pod(
    api: httpx.Client, world: World, who: str, where: str, status: int, slug: str
) -> None:
    namespace = world.a if where == "a" else world.b
    token = world.tokens[who]
    existing = assert_problem(create(api, namespace, token, "web-0"), status, slug)
    missing = assert_problem(create(api, namespace, token, "no-such-pod"), status, slug)
    assert existing == missing
    restart = f"/v1/namespaces/{namespace}/restarts/no-such-restart"
    assert_problem(api.get(restart, headers=bearer(token)), status, slug)
    assert_problem(api.delete(restart, headers=bearer(token)), status, slug)


def test_static_caller_restarts_in_its_namespace(api: httpx.Client, world: World) -> None:
    response = create(api, world.a, world.tokens["alice"], "web-0")
    assert response.status_code == 201, response.text
    assert response.json()["requestedBy"] == "alice"


def test_a_star_in_the_file_allows_every_served_namespace(api: httpx.Client, world: World) -> None:
    headers = bearer(world.tokens["ops"])
    for namespace in (world.a, world.b):
        response = api.get(f"/v1/namespaces/{namespace}/restarts", headers=headers)
        assert response.status_code == 200, response.text
    # but not one the service does not serve
    assert_problem(
        api.get("/v1/namespaces/kube-system/restarts", headers=headers), 403, "namespace-not-served"
    )
    # which a caller without a valid token cannot tell: 401 in every namespace
    for token in (None, world.tokens["garbage"]):
        for namespace in (world.a, "kube-system"):
            response = api.get(f"/v1/namespaces/{namespace}/restarts", headers=bearer(token))
            assert_problem(response, 401, "unauthenticated")


def touch_later(path: Path) -> None:
    """Move the file's mtime a second on, so a change shows whatever the clock's grain."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_tokens_file_is_reloaded_when_it_changes(
    control_plane: ControlPlane, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = new_token(), new_token()
    path = tokens_file(
        tmp_path / "tokens.json", {first: {"user": "first", "namespaces": [world.a]}}
    )
    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[world.a],
        auth_mode="static",
        auth_tokens_file=path,
    )
    url = f"/v1/namespaces/{world.a}/restarts"
    with running_service(settings) as client:
        assert client.get(url, headers=bearer(first)).status_code == 200
        assert_problem(client.get(url, headers=bearer(second)), 401)
        tokens_file(path, {second: {"user": "second", "namespaces": [world.a]}})
        touch_later(path)  # a new mtime even on coarse clocks
        wait_until(
            "the new token to be accepted",
            lambda: client.get(url, headers=bearer(second)).status_code == 200,
        )
        assert_problem(client.get(url, headers=bearer(first)), 401)
        # a broken file is refused and the last good tokens stay in force
        caplog.set_level(logging.ERROR, logger="service.auth")
        path.write_text("{not json")
        touch_later(path)

        def refused_the_file() -> bool:  # the file is looked at when a request comes
            assert client.get(url, headers=bearer(second)).status_code == 200
            return any("keeping the previous tokens" in r.getMessage() for r in caplog.records)

        wait_until("the service to read the broken file", refused_the_file)
        assert client.get(url, headers=bearer(second)).status_code == 200
        assert_problem(client.get(url, headers=bearer(first)), 401)


def test_a_broken_tokens_file_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("plain-token-not-a-hash:\n  user: mallory\n")
    settings = Settings(auth_mode="static", auth_tokens_file=path, namespaces=["x"])
    with pytest.raises(ValueError, match="is not a sha256 hex"):
        create_app(settings)


def test_static_mode_needs_a_tokens_file() -> None:
    with pytest.raises(ValidationError, match="auth_tokens_file"):
        Settings(auth_mode="static")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gateway.example.com"])
def test_no_authentication_is_refused_off_loopback(host: str) -> None:
    with pytest.raises(ValidationError, match="auth_mode none"):
        Settings(auth_mode="none", host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_no_authentication_is_allowed_on_loopback(host: str) -> None:
    assert Settings(auth_mode="none", host=host).auth_mode == "none"


def test_the_default_is_kubernetes_mode() -> None:
    assert Settings().auth_mode == "kubernetes"
