"""Where a real node differs from "kill and it comes back": restart policies and the time a
restart takes, on the real control plane (kruise's webhook and controller, the simulated
kubelet and daemon)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from tests.support.api import assert_problem, crrs_in, follow, restarts_url, start_service_in
from tests.support.pods import pod_is_running, pod_manifest, read_pod
from tests.support.waiting import wait_until

STOP_EXIT_CODE = "crr-gateway.test/stop-exit-code"


@pytest.fixture
def api(
    control_plane: ControlPlane, namespace: str, _simulator: Simulator
) -> Iterator[httpx.Client]:
    """The service, with the simulated node running the pods."""
    with ExitStack() as stack:
        yield start_service_in(stack, control_plane, [namespace])


def run_pod(
    kube: k8s.ApiClient,
    namespace: str,
    name: str,
    *,
    restart_policy: str,
    annotations: dict[str, str] | None = None,
    grace: int | None = None,
) -> dict[str, Any]:
    manifest = pod_manifest(name, ["app"], restart_policy=restart_policy)
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    if grace is not None:
        manifest["spec"]["terminationGracePeriodSeconds"] = grace
    k8s.CoreV1Api(kube).create_namespaced_pod(namespace, manifest)

    def running() -> dict[str, Any] | None:
        pod = read_pod(kube, namespace, name)
        return pod if pod_is_running(pod) else None

    pod: dict[str, Any] = wait_until(f"pod {namespace}/{name} running", running)
    return pod


def warnings_of(response: httpx.Response) -> list[str]:
    warnings: list[str] = response.json()["warnings"]
    assert response.headers["warning"].count("299 - ") == len(warnings)
    return warnings


def test_a_pod_with_restart_policy_never_is_refused_with_409(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pod(kube, namespace, "job-0", restart_policy="Never")
    for params in ({}, {"dryRun": "true"}):
        response = api.post(restarts_url(namespace), json={"pod": "job-0"}, params=params)
        body = assert_problem(response, 409, "restart-policy-never")
        assert "restartPolicy Never" in body["detail"]
        assert "would not be started again" in body["detail"]
    assert crrs_in(kube, namespace) == []


def test_on_failure_is_warned_and_a_clean_exit_is_not_started_again(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    # exit 143 on SIGTERM, as most processes: OnFailure starts it again
    run_pod(kube, namespace, "worker-0", restart_policy="OnFailure")
    created = api.post(
        restarts_url(namespace), json={"pod": "worker-0", "unreadyGracePeriodSeconds": 0}
    )
    assert created.status_code == 201, created.text
    (warning,) = [w for w in warnings_of(created) if "OnFailure" in w]
    assert "a container that exits 0 on SIGTERM is not started again" in warning
    assert follow(api, namespace, created.json()["name"])[-1]["result"] == "Succeeded"

    # exit 0 on SIGTERM: the kubelet leaves it stopped, and the restart runs out its deadline
    run_pod(
        kube, namespace, "worker-1", restart_policy="OnFailure", annotations={STOP_EXIT_CODE: "0"}
    )
    created = api.post(
        restarts_url(namespace),
        json={"pod": "worker-1", "unreadyGracePeriodSeconds": 0, "activeDeadlineSeconds": 5},
    )
    assert created.status_code == 201, created.text
    assert any("OnFailure" in w for w in warnings_of(created))
    last = follow(api, namespace, created.json()["name"])[-1]
    assert (last["result"], last["failureReason"]) == ("Failed", "DeadlineExceeded")
    (status,) = read_pod(kube, namespace, "worker-1")["status"]["containerStatuses"]
    assert status["state"]["terminated"]["exitCode"] == 0


def test_a_deadline_shorter_than_the_pods_grace_period_is_warned(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pod(kube, namespace, "db-0", restart_policy="Always", grace=120)
    url = restarts_url(namespace)
    params = {"dryRun": "true"}
    fits = api.post(url, json={"pod": "db-0"}, params=params)  # 300 s: 3 + 120 fit
    assert fits.status_code == 200, fits.text
    assert not [w for w in fits.json()["warnings"] if "activeDeadlineSeconds" in w]
    tight = api.post(url, json={"pod": "db-0", "activeDeadlineSeconds": 60}, params=params)
    assert tight.status_code == 200, tight.text
    (warning,) = [w for w in warnings_of(tight) if "activeDeadlineSeconds" in w]
    assert "activeDeadlineSeconds 60 may be too short" in warning
    assert "terminationGracePeriodSeconds 120" in warning
    # the grace period given with the request is the one kruise uses
    quick = {"pod": "db-0", "activeDeadlineSeconds": 60, "terminationGracePeriodSeconds": 10}
    short = api.post(url, json=quick, params=params)
    assert short.status_code == 200, short.text
    assert not [w for w in short.json()["warnings"] if "activeDeadlineSeconds" in w]
    assert crrs_in(kube, namespace) == []
