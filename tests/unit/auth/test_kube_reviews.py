"""Mode kubernetes over a fake of our own ``KubeAPI`` review methods (the real reviews are in
tests/integration/test_auth_kubernetes.py): what is cached, for how long, what never is."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from service.auth.kube_reviews import KubernetesAuthenticator, KubernetesAuthorizer
from service.config import Settings
from service.core.errors import (
    CallerForbidden,
    KubeForbidden,
    KubeUnavailable,
    Unauthenticated,
)
from service.core.identity import Caller
from service.core.objects import KubeObject
from tests.support.fake_kube import FakeKube


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
