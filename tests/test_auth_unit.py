"""Pure units of authentication, authorization and the guardrails, over a fake of our own
``KubeAPI`` review methods (the real reviews are in test_auth_kubernetes.py): what is cached,
for how long, what never is, and the token bucket's arithmetic."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from service.auth.caching import TTLCache
from service.auth.kube_reviews import KubernetesAuthenticator, KubernetesAuthorizer
from service.auth.static_tokens import load_tokens_file
from service.config import Settings
from service.core.errors import (
    CallerForbidden,
    KubeForbidden,
    KubeUnavailable,
    RateLimited,
    Unauthenticated,
)
from service.core.guardrails import RateLimiter
from service.core.identity import Caller
from service.core.objects import KubeObject
from tests.test_service_cache import FakeKube


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ReviewKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.token_reviews: list[tuple[str, list[str]]] = []
        self.access_reviews: list[KubeObject] = []
        self.users: dict[str, KubeObject] = {}
        self.allowed: set[str] = set()
        self.error: Exception | None = None

    def review_token(self, token: str, audiences: Sequence[str]) -> KubeObject:
        self.token_reviews.append((token, list(audiences)))
        if self.error is not None:
            raise self.error
        user = self.users.get(token)
        if user is None:
            return {"authenticated": False, "error": "invalid bearer token"}
        return {"authenticated": True, "user": user, "audiences": list(audiences)}

    def review_access(self, spec: KubeObject) -> KubeObject:
        self.access_reviews.append(spec)
        return {"allowed": spec["resourceAttributes"]["namespace"] in self.allowed}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_ttl_cache_expires_and_stays_bounded() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(2, clock=clock)
    cache.put("a", 1, 5)
    cache.put("b", 2, 1)
    assert cache.get("a") == (True, 1)
    clock.now += 2
    assert cache.get("b") == (False, None)
    cache.put("c", 3, 5)
    cache.put("d", 4, 5)  # "a" is the least recently used: dropped
    assert len(cache) == 2 and cache.get("a") == (False, None)
    cache.put("e", 5, 0)  # a zero TTL stores nothing
    assert cache.get("e") == (False, None)


def test_token_reviews_are_cached_successes_longer_than_failures() -> None:
    kube = ReviewKube()
    kube.users["good"] = {"username": "alice", "uid": "u1", "groups": ["g"], "extra": {"k": ["v"]}}
    settings = Settings(auth_audiences=["crr-gateway"], auth_cache_failure_ttl_seconds=0)
    authn = KubernetesAuthenticator(kube, settings)

    async def main() -> None:
        first = await authn.authenticate("good")
        assert first == await authn.authenticate("good")
        assert first.name == "alice" and first.groups == ("g",) and first.uid == "u1"
        assert first.extra_dict() == {"k": ["v"]}
        for _ in range(2):
            with pytest.raises(Unauthenticated):
                await authn.authenticate("bad")

    run(main())
    assert kube.token_reviews == [
        ("good", ["crr-gateway"]),
        ("bad", ["crr-gateway"]),
        ("bad", ["crr-gateway"]),  # failures not cached with a zero failure TTL
    ]


def test_concurrent_misses_share_one_review() -> None:
    kube = ReviewKube()
    kube.users["good"] = {"username": "alice", "uid": "u1"}
    kube.allowed.add("shop")
    settings = Settings()
    authn = KubernetesAuthenticator(kube, settings)
    authz = KubernetesAuthorizer(kube, settings)

    async def main() -> None:
        callers = await asyncio.gather(*(authn.authenticate("good") for _ in range(20)))
        assert {c.name for c in callers} == {"alice"}
        await asyncio.gather(*(authz.authorize(callers[0], "shop", "create") for _ in range(20)))
        bad = await asyncio.gather(
            *(authn.authenticate("bad") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(b, Unauthenticated) for b in bad)

    run(main())
    assert len(kube.token_reviews) == 2  # one for "good", one for "bad"
    assert len(kube.access_reviews) == 1


def test_an_apiserver_error_is_not_cached_and_not_a_401() -> None:
    kube = ReviewKube()
    kube.users["good"] = {"username": "alice"}
    authn = KubernetesAuthenticator(kube, Settings())
    kube.error = KubeUnavailable("apiserver down")

    async def main() -> None:
        with pytest.raises(KubeUnavailable):
            await authn.authenticate("good")
        kube.error = None
        assert (await authn.authenticate("good")).name == "alice"

    run(main())


def test_a_review_the_service_may_not_make_is_503_not_the_callers_403() -> None:
    kube = ReviewKube()
    kube.error = KubeForbidden('User "system:serviceaccount:x:gw" cannot create tokenreviews')
    authn = KubernetesAuthenticator(kube, Settings())
    with pytest.raises(KubeUnavailable) as raised:
        run(authn.authenticate("good"))
    assert raised.value.status == 503
    assert "system:serviceaccount" not in raised.value.detail


def test_a_review_without_the_requested_audience_is_refused() -> None:
    kube = ReviewKube()
    kube.users["good"] = {"username": "alice"}
    kube.review_token = lambda token, audiences: {  # type: ignore[method-assign]
        "authenticated": True,
        "user": {"username": "alice"},
        "audiences": ["someone-else"],
    }
    authn = KubernetesAuthenticator(kube, Settings(auth_audiences=["crr-gateway"]))
    with pytest.raises(Unauthenticated):
        run(authn.authenticate("good"))


def test_access_reviews_send_the_whole_identity_and_cache_both_answers() -> None:
    kube = ReviewKube()
    kube.allowed = {"a"}
    authz = KubernetesAuthorizer(kube, Settings())
    caller = Caller("alice", ("g1",), "uid-1", (("scopes", ("x",)),), authenticated=True)

    async def main() -> None:
        for _ in range(2):
            await authz.authorize(caller, "a", "create")
            with pytest.raises(CallerForbidden):
                await authz.authorize(caller, "b", "create")
        await authz.authorize(caller, "a", "watch")

    run(main())
    assert len(kube.access_reviews) == 3
    assert kube.access_reviews[0] == {
        "user": "alice",
        "uid": "uid-1",
        "groups": ["g1"],
        "extra": {"scopes": ["x"]},
        "resourceAttributes": {
            "namespace": "a",
            "verb": "create",
            "group": "apps.kruise.io",
            "resource": "containerrecreaterequests",
        },
    }
    assert kube.access_reviews[2]["resourceAttributes"]["verb"] == "watch"


def test_resource_attributes_are_configurable() -> None:
    kube = ReviewKube()
    settings = Settings(
        authz_group="", authz_resource="pods", authz_subresource="restart", authz_verb="update"
    )
    spec = KubernetesAuthorizer(kube, settings).spec(Caller("bob"), "ns", "get")
    assert spec["resourceAttributes"] == {
        "namespace": "ns",
        "verb": "update",
        "group": "",
        "resource": "pods",
        "subresource": "restart",
    }


def test_a_tokens_file_maps_hashes_to_identities(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    path = tmp_path / "tokens.yaml"
    path.write_text(f"{digest.upper()}:\n  user: alice\n  groups: [a]\n  namespaces: [ns]\n")
    ((key, caller),) = load_tokens_file(path)
    assert key == hashlib.sha256(b"s3cret").digest()
    assert caller == Caller("alice", ("a",), authenticated=True, namespaces=frozenset({"ns"}))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- a list\n", "expected a mapping"),
        ("abc:\n  user: x\n", "not a sha256 hex"),
        (f"{'a' * 64}:\n  groups: []\n", "needs user"),
        (f"{'a' * 64}:\n  user: x\n  namespaces: ns\n", "namespaces must be a list"),
        (f"{'a' * 64}:\n  user: x\n  admin: true\n", "unknown keys"),
        ("{broken", "cannot read"),
    ],
)
def test_a_broken_tokens_file_says_why(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        load_tokens_file(path)


def test_the_token_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(0.5, 2, clock=clock)
    limiter.take("alice")
    limiter.take("alice")
    with pytest.raises(RateLimited) as refused:
        limiter.take("alice")
    assert refused.value.headers["Retry-After"] == "2"
    limiter.take("bob")  # per caller
    clock.now += 2
    limiter.take("alice")
    with pytest.raises(RateLimited):
        limiter.take("alice")
    RateLimiter(0, 1, clock=clock).take("anyone")  # rate 0: off
