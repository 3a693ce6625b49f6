"""Idempotency-Key across two service processes sharing one cluster, and across a create that
timed out: the key is kept in Kubernetes (a deterministic CRR name and the request's hash on
the CRR), not in memory."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from tests.support.api import assert_problem, crrs_in, follow, restarts_url, start_service_in
from tests.support.faultproxy import FaultProxy
from tests.support.pods import MakePod
from tests.support.service_process import running_replicas
from tests.support.waiting import wait_until


@pytest.fixture
def replicas(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (
        running_replicas(control_plane.kubeconfig, namespace, tmp_path) as (first, second),
        httpx.Client(base_url=first.url, timeout=60) as a,
        httpx.Client(base_url=second.url, timeout=60) as b,
    ):
        yield a, b


def test_the_same_key_returns_the_same_restart_on_either_replica(
    replicas: tuple[httpx.Client, httpx.Client],
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
) -> None:
    a, b = replicas
    make_pod("web-0", ["app", "sidecar"])
    simulator.slow_seconds = 0.5
    body: dict[str, Any] = {"pod": "web-0", "reason": "rollout 42"}
    key = {"Idempotency-Key": "rollout-42-web-0"}

    first = a.post(restarts_url(namespace), json=body, headers=key)
    assert first.status_code == 201, first.text
    name = first.json()["name"]
    # the other replica, with the same key and the same body (defaults spelled out)
    again = b.post(restarts_url(namespace), json={**body, "failurePolicy": "Fail"}, headers=key)
    assert again.status_code == 200, again.text
    assert again.json()["name"] == name
    assert again.headers["location"] == restarts_url(namespace, name)
    # the same key with another body
    other = b.post(restarts_url(namespace), json={**body, "reason": "rollout 43"}, headers=key)
    problem = assert_problem(other, 422, "idempotency-key-reused")
    assert problem["restart"] == name
    assert len(crrs_in(kube, namespace)) == 1

    final = follow(b, namespace, name)[-1]
    assert final["result"] == "Succeeded"
    # still the same answer after it finished, on both replicas
    for replica in (a, b):
        replay = replica.post(restarts_url(namespace), json=body, headers=key)
        assert replay.status_code == 200, replay.text
        assert replay.json()["name"] == name
        assert replay.json()["result"] == "Succeeded"
    assert len(crrs_in(kube, namespace)) == 1


def test_two_replicas_racing_with_one_key_create_one_restart(
    replicas: tuple[httpx.Client, httpx.Client],
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
) -> None:
    a, b = replicas
    make_pod("web-0", ["app"])
    body = {"pod": "web-0"}
    key = {"Idempotency-Key": "race"}

    def post(client: httpx.Client) -> httpx.Response:
        return client.post(restarts_url(namespace), json=body, headers=key)

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(post, (a, b)))

    assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
    assert responses[0].json()["name"] == responses[1].json()["name"]
    assert len(crrs_in(kube, namespace)) == 1
    # one key racing with bodies for two different pods: still one restart, the other 422
    make_pod("web-1", ["app"])
    make_pod("web-2", ["app"])

    def post_for(pair: tuple[httpx.Client, str]) -> httpx.Response:
        client, pod = pair
        return client.post(
            restarts_url(namespace), json={"pod": pod}, headers={"Idempotency-Key": "two-pods"}
        )

    with ThreadPoolExecutor(2) as pool:
        raced = list(pool.map(post_for, ((a, "web-1"), (b, "web-2"))))
    assert sorted(r.status_code for r in raced) == [201, 422], [r.text for r in raced]
    assert len(crrs_in(kube, namespace)) == 2
    # an explicit name with a key holds across replicas too
    named = {"pod": "web-0", "name": "named-once"}
    follow(a, namespace, responses[0].json()["name"])
    first = a.post(restarts_url(namespace), json=named, headers={"Idempotency-Key": "n"})
    assert first.status_code == 201, first.text
    second = b.post(restarts_url(namespace), json=named, headers={"Idempotency-Key": "n"})
    assert second.status_code == 200, second.text
    assert second.json()["name"] == "named-once"
    # the name without the key is taken
    assert_problem(b.post(restarts_url(namespace), json=named), 409)


def test_a_create_that_timed_out_is_answered_by_its_retry_with_the_same_key(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    tmp_path: Path,
) -> None:
    """The slow-apiserver case the README promises: the service gives up (504) while the
    create is on its way, the CRR lands anyway, and a retry with the same key is answered
    with that restart instead of making a second one."""
    make_pod("web-0", ["app"])
    body = {"pod": "web-0", "reason": "deploy 7"}
    key = {"Idempotency-Key": "deploy-7-web-0"}
    with FaultProxy(control_plane.apiserver_port) as proxy, ExitStack() as stack:
        kubeconfig = proxy.kubeconfig(control_plane.kubeconfig, tmp_path / "proxied.kubeconfig")
        api = start_service_in(
            stack, control_plane, [namespace], kubeconfig=kubeconfig, request_timeout_seconds=1
        )
        # a dry run at full speed leaves a pooled connection, so the real create goes out at
        # once (a new TLS handshake through the slow proxy would time out before sending it)
        dry = api.post(restarts_url(namespace), params={"dryRun": "true"}, json=body, headers=key)
        assert dry.status_code == 200, dry.text

        proxy.delay = 2.0  # every chunk either way waits 2 s: beyond the 1 s timeout
        timed_out = assert_problem(
            api.post(restarts_url(namespace), json=body, headers=key), 504, "kube-timeout"
        )
        name = timed_out["restart"]
        assert name == dry.json()["name"]  # the key decides the name
        assert f"restart {name} may still be created" in timed_out["detail"]
        assert "retry with the same Idempotency-Key" in timed_out["detail"]

        # the request was sent: the apiserver makes the CRR after the service gave up
        wait_until(
            f"the timed-out create of {name} to land",
            lambda: [c["metadata"]["name"] for c in crrs_in(kube, namespace)] == [name],
        )
        proxy.delay = 0

        retried = api.post(restarts_url(namespace), json=body, headers=key)
        assert retried.status_code == 200, retried.text  # not created again: answered
        assert retried.json()["name"] == name
        assert retried.headers["location"] == restarts_url(namespace, name)
        assert [c["metadata"]["name"] for c in crrs_in(kube, namespace)] == [name]
        final = follow(api, namespace, name)[-1]
    assert final["result"] == "Succeeded", final
    assert final["reason"] == "deploy 7"
    assert len(crrs_in(kube, namespace)) == 1
