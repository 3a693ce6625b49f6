"""Routes and error rendering over a fake of our own ``KubeAPI`` port: the answers that
need a broken or unusual cluster (OpenKruise missing, webhook denials we did not foresee,
throttling, timeouts, crashes)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.core.errors import (
    GatewayError,
    KruiseMissing,
    KubeForbidden,
    KubeInvalid,
    KubeTimeout,
    KubeTooManyRequests,
)
from service.core.objects import KubeObject
from service.operations import RestartOperations
from tests.support.fake_kube import FakeKube
from tests.support.pods import pod
from tests.support.serving import serve

URL = "/v1/namespaces/ns/restarts"
PREFIX = 'admission webhook "mcontainerrecreaterequest.kb.io" denied the request: '


class RouteKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.create_error: Exception | None = None
        self.pod_error: Exception | None = None
        self.version_error: Exception | None = None
        self.created: list[KubeObject] = []
        self.restart_policy = "Always"

    def crr_version(self, *, refresh: bool = False) -> str:
        if self.version_error is not None:
            raise self.version_error
        return "v1beta1"

    def get_pod(self, namespace: str, name: str) -> KubeObject:
        if self.pod_error is not None:
            raise self.pod_error
        return pod(restart_policy=self.restart_policy)

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject:
        if self.create_error is not None:
            raise self.create_error
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "5"}}


@contextmanager
def service(kube: RouteKube) -> Iterator[httpx.Client]:
    app = create_app(
        Settings(namespaces=["ns"], auth_mode="none"), kube_factory=lambda _settings: kube
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


def test_openkruise_missing_is_503() -> None:
    kube = RouteKube()
    kube.version_error = KruiseMissing("OpenKruise is missing: no apps.kruise.io")
    kube.list_error = kube.version_error
    with service(kube) as client:
        body = problem(client.post(URL, json={"pod": "web-0"}), 503)
        assert body["type"] == "urn:crr-gateway:problem:openkruise-missing"
        assert "OpenKruise is missing" in body["detail"]
        assert client.get("/readyz").status_code == 503


def test_a_webhook_denial_we_did_not_foresee_is_422_with_its_message() -> None:
    kube = RouteKube()
    kube.create_error = KubeInvalid(PREFIX + "a brand new rule", code=400)
    with service(kube) as client:
        body = problem(client.post(URL, json={"pod": "web-0"}), 422)
        assert body["detail"] == PREFIX + "a brand new rule"
        assert body["type"] == "urn:crr-gateway:problem:kube-rejected"


def test_webhook_denials_from_a_race_answer_like_our_own_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the create waits about 3 s for a lagging webhook; the answer, not the wait, is the point
    monkeypatch.setattr(RestartOperations, "webhook_lag_delays", (0.01,) * 5)
    kube = RouteKube()
    kube.create_error = KubeInvalid(PREFIX + "no found Pod named web-0", code=400)
    with service(kube) as client:
        # the webhook's pod cache is behind ours: retried, then 503 to retry shortly
        response = client.post(URL, json={"pod": "web-0"})
        body = problem(response, 503)
        assert body["type"] == "urn:crr-gateway:problem:openkruise-lagging"
        assert "no found Pod named web-0" in body["detail"]
        assert response.headers["retry-after"] == "1"
        kube.create_error = KubeInvalid(
            PREFIX + "not allowed to recreate containers in an inactive Pod", code=400
        )
        assert problem(client.post(URL, json={"pod": "web-0"}), 409)["detail"] == (
            "not allowed to recreate containers in an inactive Pod"
        )
        kube.create_error = None
        assert client.post(URL, json={"pod": "web-0"}).status_code == 201


@pytest.mark.parametrize(
    ("error", "status", "header"),
    [
        (KubeForbidden("crrs is forbidden: User cannot create"), 403, None),
        (KubeTooManyRequests("slow down", headers={"Retry-After": "3"}), 429, "3"),
        (KubeTimeout("the apiserver did not answer in time"), 504, None),
    ],
)
def test_apiserver_answers_pass_through(
    error: GatewayError, status: int, header: str | None
) -> None:
    kube = RouteKube()
    kube.create_error = error
    with service(kube) as client:
        response = client.post(URL, json={"pod": "web-0"})
        body = problem(response, status)
        assert body["detail"].startswith(error.detail)
        if header is not None:
            assert response.headers["retry-after"] == header


def test_a_create_that_timed_out_says_it_may_still_land_and_how_to_find_out() -> None:
    kube = RouteKube()
    kube.create_error = KubeTimeout("the apiserver did not answer in time")
    with service(kube) as client:
        keyed = problem(
            client.post(URL, json={"pod": "web-0"}, headers={"Idempotency-Key": "k1"}), 504
        )
        assert "may still be created" in keyed["detail"]
        assert "retry with the same Idempotency-Key" in keyed["detail"]
        assert keyed["restart"].startswith("restart-k")
        plain = problem(client.post(URL, json={"pod": "web-0"}), 504)
        assert "restarts?pod=web-0" in plain["detail"]
        assert plain["restart"].startswith("web-0-")


def test_a_crash_is_500_without_a_stack_trace(caplog: pytest.LogCaptureFixture) -> None:
    kube = RouteKube()
    kube.pod_error = RuntimeError("secret internals at /srv/app.py line 3")
    with caplog.at_level(logging.CRITICAL, logger="service.http.problems"), service(kube) as client:
        response = client.post(URL, json={"pod": "web-0"})
    body = problem(response, 500)
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert body["instance"] == URL


def test_the_request_body_goes_to_kube_with_names_only() -> None:
    kube = RouteKube()
    with service(kube) as client:
        created = client.post(URL, json={"pod": "web-0", "containers": ["app"]})
        assert created.status_code == 201, created.text
        (body,) = kube.created
        assert body["spec"]["containers"] == [{"name": "app"}]
        # straight after the create the cache answers, without any watch event
        got = client.get(URL + "/" + created.json()["name"])
        assert got.status_code == 200
        assert got.json() == created.json()


def test_validation_problems_name_the_fields() -> None:
    with service(RouteKube()) as client:
        body = problem(client.post(URL, json={"pod": "web-0", "bogus": 1}), 422)
        assert body["errors"][0]["location"] == ["body", "bogus"]
        assert "body bogus" in body["detail"]
        body = problem(client.post("/v1/namespaces/Bad_NS/restarts", json={"pod": "x"}), 422)
        assert body["errors"][0]["location"] == ["path", "namespace"]


def test_an_empty_list_of_containers_is_refused_not_every_container() -> None:
    kube = RouteKube()
    with service(kube) as client:
        response = client.post(URL, json={"pod": "web-0", "containers": []})
        body = problem(response, 422)
        assert body["type"] == "urn:crr-gateway:problem:invalid-request"
        assert body["detail"] == (
            "body containers: containers is empty: omit containers to restart all of them"
        )
        assert kube.created == []
        # omitted, it means every container
        assert client.post(URL, json={"pod": "web-0"}).status_code == 201
        assert [c["name"] for c in kube.created[0]["spec"]["containers"]] == ["app", "sidecar"]


def test_a_pod_whose_containers_would_not_start_again_is_refused() -> None:
    kube = RouteKube()
    kube.restart_policy = "Never"
    with service(kube) as client:
        body = problem(client.post(URL, json={"pod": "web-0"}), 409)
        assert body["type"] == "urn:crr-gateway:problem:restart-policy-never"
        assert "would not be started again" in body["detail"]
        assert kube.created == []
        kube.restart_policy = "OnFailure"
        created = client.post(URL, json={"pod": "web-0", "containers": ["app"]})
        assert created.status_code == 201, created.text
        assert "exits 0 on SIGTERM is not started again" in created.headers["warning"]
        assert any("exits 0 on SIGTERM" in w for w in created.json()["warnings"])
