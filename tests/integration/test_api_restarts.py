"""The restart API against the real control plane (apiserver, kruise webhook and controller,
simulated kubelet and daemon), through a real uvicorn server on a loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.app import create_app
from service.config import Settings
from tests.support.api import (
    Restart,
    StartService,
    assert_problem,
    crrs_in,
    follow,
    restarts_url,
    start_service_in,
)
from tests.support.pods import MakePod, read_pod
from tests.support.serving import serve
from tests.support.waiting import wait_until


@pytest.fixture
def start_service(control_plane: ControlPlane, namespace: str) -> Iterator[StartService]:
    with ExitStack() as stack:

        def start(**overrides: Any) -> httpx.Client:
            namespaces = overrides.pop("namespaces", [namespace])
            return start_service_in(stack, control_plane, namespaces, **overrides)

        yield start


@pytest.fixture
def api(start_service: StartService) -> httpx.Client:
    return start_service()


def container_ids(pod: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["containerID"] for s in pod["status"]["containerStatuses"]}


# ---------------------------------------------------------------- the happy paths


def test_restart_all_containers_with_defaults_followed_by_long_poll(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    before = make_pod("web-0", ["app", "sidecar"])

    created = api.post(restarts_url(namespace), json={"pod": "web-0", "reason": "deploy"})

    assert created.status_code == 201, created.text
    restart = created.json()
    name = restart["name"]
    assert name.startswith("web-0-") and len(name) == len("web-0-") + 5
    assert created.headers["location"] == restarts_url(namespace, name)
    assert "KruisePodReady" in created.headers["warning"]
    assert created.headers["warning"].startswith('299 - "')
    assert restart["warnings"] and "KruisePodReady" in restart["warnings"][0]
    # every container, and every default
    assert restart["containers"] == ["app", "sidecar"]
    assert restart["strategy"] == {
        "failurePolicy": "Fail",
        "orderedRecreate": False,
        "forceRecreate": False,
        "unreadyGracePeriodSeconds": 3,
        "terminationGracePeriodSeconds": 5,  # not sent: kruise's webhook takes the pod's
        "minStartedSeconds": 0,
    }
    assert restart["activeDeadlineSeconds"] == 300
    assert restart["ttlSecondsAfterFinished"] == 1800
    assert restart["namespace"] == namespace
    assert restart["pod"] == "web-0"
    assert restart["podUID"] == before["metadata"]["uid"]
    assert restart["node"]
    assert restart["requestedBy"] == "anonymous"
    assert restart["reason"] == "deploy"
    assert restart["finished"] is False and restart["result"] is None
    assert restart["createdAt"]

    # what went to Kubernetes: names only, our labels and annotations
    (crr,) = crrs_in(kube, namespace)
    assert crr["metadata"]["name"] == name
    assert crr["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "crr-gateway"
    assert crr["metadata"]["annotations"]["crr-gateway.io/reason"] == "deploy"
    assert crr["metadata"]["annotations"]["crr-gateway.io/requested-by"] == "anonymous"
    assert "minStartedSeconds" not in crr["spec"]["strategy"]
    assert "forceRecreate" not in crr["spec"]["strategy"]

    # straight after the POST, the GET finds it
    got = api.get(restarts_url(namespace, name))
    assert got.status_code == 200
    assert got.json()["name"] == name

    seen = follow(api, namespace, name)
    final = seen[-1]
    assert final["phase"] == "Completed"
    assert final["result"] == "Succeeded", final
    assert final["message"] is None and final["failureReason"] is None
    assert final["completedAt"]
    assert {(s["name"], s["phase"]) for s in final["containerStates"]} == {
        ("app", "Succeeded"),
        ("sidecar", "Succeeded"),
    }
    # long polls answer on changes, not on a timer
    assert len(seen) < 15
    after = read_pod(kube, namespace, "web-0")
    for container, old_id in container_ids(before).items():
        assert container_ids(after)[container] != old_id

    # a finished restart answers a long poll at once: a poll that waited its 60 s would
    # outlast the client's read timeout
    again = api.get(
        restarts_url(namespace, name),
        params={"wait": 60, "resourceVersion": "0"},
        timeout=httpx.Timeout(30, read=20),
    ).json()
    assert again["result"] == "Succeeded"


def test_sse_follows_a_restart_of_a_pod_with_ports_and_pre_stop_to_succeeded(
    api: httpx.Client, namespace: str, make_pod: MakePod, simulator: Simulator
) -> None:
    make_pod("web-0", ["app", "sidecar"], ports=True, pre_stop=True, readiness_gate=True)
    simulator.slow_seconds = 0.7  # long enough for heartbeats between snapshots

    created = api.post(
        restarts_url(namespace),
        json={"pod": "web-0", "containers": ["app"], "unreadyGracePeriodSeconds": 0},
    )

    assert created.status_code == 201, created.text
    restart = created.json()
    assert restart["containers"] == ["app"]
    assert restart["warnings"] == []  # the pod has the KruisePodReady readiness gate
    assert "warning" not in created.headers

    events: list[Restart] = []
    ids: list[str] = []
    heartbeats = 0
    with api.stream("GET", restarts_url(namespace, restart["name"]) + "/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in stream.iter_lines():
            if line.startswith(": heartbeat"):
                heartbeats += 1
            elif line.startswith("event: "):
                event["event"] = line[len("event: ") :]
            elif line.startswith("id: "):
                event["id"] = line[len("id: ") :]
            elif line.startswith("data: "):
                event["data"] = line[len("data: ") :]
            elif line == "" and "data" in event:
                assert event["event"] == "restart"
                events.append(json.loads(event["data"]))
                ids.append(event["id"])
                event = {}
    # the stream ended by itself after the finished snapshot
    assert events[-1]["finished"] is True
    assert events[-1]["result"] == "Succeeded", events[-1]
    assert all(not e["finished"] for e in events[:-1])
    assert ids == [e["resourceVersion"] for e in events]
    assert len(set(ids)) == len(ids)
    assert heartbeats >= 1
    assert any(e["phase"] == "Recreating" for e in events)


def test_overrides_are_passed_through(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web-0", ["app", "sidecar"])
    body = {
        "pod": "web-0",
        "name": "my-restart",
        "containers": ["sidecar", "app"],
        "failurePolicy": "Ignore",
        "orderedRecreate": True,
        "unreadyGracePeriodSeconds": 0,
        "activeDeadlineSeconds": 120,
        "ttlSecondsAfterFinished": 60,
        "terminationGracePeriodSeconds": 1,
        "minStartedSeconds": 0,
        "forceRecreate": True,
    }
    created = api.post(restarts_url(namespace), json=body)
    assert created.status_code == 201, created.text
    restart = created.json()
    assert restart["name"] == "my-restart"
    assert restart["containers"] == ["sidecar", "app"]
    assert restart["strategy"] == {
        "failurePolicy": "Ignore",
        "orderedRecreate": True,
        "forceRecreate": True,
        "unreadyGracePeriodSeconds": 0,
        "terminationGracePeriodSeconds": 1,
        "minStartedSeconds": 0,
    }
    assert restart["activeDeadlineSeconds"] == 120
    assert restart["ttlSecondsAfterFinished"] == 60
    (crr,) = crrs_in(kube, namespace)
    assert [c for c in crr["spec"]["containers"] if set(c) - {"name", "statusContext"}] == []
    assert follow(api, namespace, "my-restart")[-1]["result"] == "Succeeded"


def test_dry_run_validates_through_the_webhook_and_creates_nothing(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    pod = make_pod("web-0", ["app"], ports=True, pre_stop=True)

    response = api.post(
        restarts_url(namespace), params={"dryRun": "true"}, json={"pod": "web-0", "name": "dry"}
    )

    assert response.status_code == 200, response.text
    restart = response.json()
    assert restart["name"] == "dry"
    assert restart["containers"] == ["app"]
    assert restart["podUID"] == pod["metadata"]["uid"]  # the webhook ran and labelled it
    assert restart["finished"] is False
    assert crrs_in(kube, namespace) == []
    assert_problem(api.get(restarts_url(namespace, "dry")), 404, "restart-not-found")
    # dry runs check everything a real create checks
    missing = api.post(restarts_url(namespace), params={"dryRun": "true"}, json={"pod": "nope"})
    assert_problem(missing, 404, "pod-not-found")


# ---------------------------------------------------------------- failures kruise reports


def test_a_kill_error_fails_the_restart(
    api: httpx.Client, namespace: str, make_pod: MakePod, simulator: Simulator
) -> None:
    make_pod("web-0", ["app", "sidecar"])
    simulator.fail_kill(namespace, "web-0", "app", "rpc error: the runtime said no")

    created = api.post(restarts_url(namespace), json={"pod": "web-0"})
    assert created.status_code == 201, created.text

    final = follow(api, namespace, created.json()["name"])[-1]
    assert final["finished"] is True
    assert final["result"] == "Failed"
    assert final["failureReason"] == "KillError"
    assert "kill container error" in final["message"]
    assert "the runtime said no" in final["message"]
    states = {s["name"]: s for s in final["containerStates"]}
    assert states["app"]["phase"] == "Failed"


def test_a_restart_past_its_deadline_fails(
    api: httpx.Client, namespace: str, make_pod: MakePod, simulator: Simulator
) -> None:
    make_pod("web-0", ["app"])
    simulator.daemon_down = True

    created = api.post(restarts_url(namespace), json={"pod": "web-0", "activeDeadlineSeconds": 3})
    assert created.status_code == 201, created.text

    final = follow(api, namespace, created.json()["name"], timeout=60)[-1]
    assert final["result"] == "Failed"
    assert final["failureReason"] == "DeadlineExceeded"
    assert final["message"] == "recreating has exceeded the activeDeadlineSeconds"
    assert final["phase"] == "Completed"


def test_finished_restart_is_kept_after_kruise_deletes_it_for_the_retention(
    start_service: StartService, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    api = start_service(retention_seconds=4)
    make_pod("web-0", ["app"])

    created = api.post(restarts_url(namespace), json={"pod": "web-0", "ttlSecondsAfterFinished": 0})
    assert created.status_code == 201, created.text
    name = created.json()["name"]

    final = follow(api, namespace, name)[-1]
    assert final["result"] == "Succeeded"
    wait_until("kruise to delete the CRR", lambda: crrs_in(kube, namespace) == [], timeout=30)

    kept = api.get(restarts_url(namespace, name))
    assert kept.status_code == 200
    assert kept.json()["result"] == "Succeeded"
    assert kept.json()["finished"] is True
    listed = api.get(restarts_url(namespace)).json()
    assert [r["name"] for r in listed["items"]] == [name]

    def gone() -> bool:
        return api.get(restarts_url(namespace, name)).status_code == 404

    wait_until("the retention to pass", gone, timeout=15)
    # kept for the retention: kruise deleted it no earlier than it completed, so it went
    # away at least retention_seconds after its completionTime (a clock that only a busy
    # machine could stretch, never shorten)
    completed = datetime.fromisoformat(final["completedAt"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - completed >= timedelta(seconds=4)
    assert api.get(restarts_url(namespace)).json()["items"] == []


# ---------------------------------------------------------------- refusals before kruise


def test_every_refusal_is_a_precise_problem(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web-0", ["app", "sidecar"])
    url = restarts_url(namespace)

    body = assert_problem(api.post(url, json={"pod": "ghost"}), 404, "pod-not-found")
    assert body["detail"] == "no found Pod named ghost"
    assert body["instance"] == url

    body = assert_problem(
        api.post(url, json={"pod": "web-0", "containers": ["app", "db", "cache"]}),
        422,
        "unknown-containers",
    )
    assert body["unknownContainers"] == ["db", "cache"]
    assert body["validContainers"] == ["app", "sidecar"]
    assert "container db not found in Pod" in body["detail"]

    body = assert_problem(
        api.post(url, json={"pod": "web-0", "containers": ["app", "app"]}),
        422,
        "duplicate-containers",
    )
    assert body["detail"] == "can not recreate app multi times"

    for invalid in (
        {"pod": "web-0", "color": "blue"},  # unknown field
        {"pod": "web-0", "activeDeadlineSeconds": 2},
        {"pod": "web-0", "unreadyGracePeriodSeconds": -1},
        {"pod": "web-0", "ttlSecondsAfterFinished": -1},
        {"pod": "web-0", "terminationGracePeriodSeconds": -1},
        {"pod": "web-0", "failurePolicy": "Retry"},
        {"pod": "web-0", "reason": "x" * 257},
        {"pod": "web-0", "name": "Not_A_Name"},
        {"pod": "web-0", "orderedRecreate": "yes"},
        {"containers": ["app"]},  # no pod
    ):
        body = assert_problem(api.post(url, json=invalid), 422, "invalid-request")
        assert body["errors"], invalid
    body = assert_problem(
        api.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid-request",
    )
    body = assert_problem(
        api.post(url, json={"pod": "web-0", "activeDeadlineSeconds": 3601}), 422, "invalid-request"
    )
    assert body["maxActiveDeadlineSeconds"] == 3600

    # a name already taken
    assert api.post(url, json={"pod": "web-0", "name": "once"}).status_code == 201
    # the first is still active on the pod
    body = assert_problem(api.post(url, json={"pod": "web-0"}), 409, "restart-in-progress")
    assert body["activeRestart"] == "once"
    assert "once" in body["detail"]
    follow(api, namespace, "once")
    assert_problem(api.post(url, json={"pod": "web-0", "name": "once"}), 409, "restart-exists")

    # routes and namespaces
    assert_problem(api.get(restarts_url(namespace, "nope")), 404, "restart-not-found")
    assert_problem(api.delete(restarts_url(namespace, "nope")), 404, "restart-not-found")
    assert_problem(api.get(restarts_url("not-served")), 403, "namespace-not-served")
    assert_problem(api.post(restarts_url("not-served"), json={"pod": "x"}), 403)
    assert_problem(api.get("/v2/nothing"), 404)
    assert_problem(api.put(url, json={}), 405)
    assert_problem(api.get(restarts_url(namespace, "x"), params={"wait": 61}), 422)
    assert_problem(api.get(url, params={"limit": 0}), 422)
    assert_problem(api.get(url, params={"continue": "%%%"}), 422)
    assert len(crrs_in(kube, namespace)) == 1


def test_pods_kruise_would_refuse_are_refused_with_409(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(kube)
    container = {"name": "app", "image": "example.test/app:1.0"}
    # not scheduled: the simulated scheduler leaves gated pods alone
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "gated"},
            "spec": {"containers": [container], "schedulingGates": [{"name": "hold"}]},
        },
    )
    # on a node nobody runs: scheduled, active, but no containerID ever
    for name in ("elsewhere", "done"):
        core.create_namespaced_pod(
            namespace,
            {"metadata": {"name": name}, "spec": {"containers": [container], "nodeName": "nobody"}},
        )
    core.patch_namespaced_pod_status("done", namespace, {"status": {"phase": "Succeeded"}})
    url = restarts_url(namespace)

    body = assert_problem(api.post(url, json={"pod": "gated"}), 409, "pod-not-restartable")
    assert body["detail"] == "not allowed to recreate containers in a pending Pod"
    body = assert_problem(api.post(url, json={"pod": "done"}), 409, "pod-not-restartable")
    assert body["detail"] == "not allowed to recreate containers in an inactive Pod"
    body = assert_problem(api.post(url, json={"pod": "elsewhere"}), 409, "container-not-started")
    assert body["detail"] == "not found app containerStatus in Pod Status"

    core.patch_namespaced_pod_status(
        "elsewhere",
        namespace,
        {"status": {"containerStatuses": [{**_waiting_status(), "name": "app"}]}},
    )
    body = assert_problem(api.post(url, json={"pod": "elsewhere"}), 409, "container-not-started")
    assert body["detail"] == (
        "no containerID in app containerStatus, maybe the container has not been initialized"
    )
    assert crrs_in(kube, namespace) == []


def _waiting_status() -> dict[str, Any]:
    return {
        "image": "example.test/app:1.0",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }


# ---------------------------------------------------------------- delete, list


def test_delete_stops_a_restart_and_returns_its_last_state(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str, make_pod: MakePod, simulator: Simulator
) -> None:
    make_pod("web-0", ["app"])
    simulator.daemon_down = True
    name = api.post(restarts_url(namespace), json={"pod": "web-0"}).json()["name"]

    deleted = api.delete(restarts_url(namespace, name))

    assert deleted.status_code == 200, deleted.text
    last = deleted.json()
    assert last["name"] == name
    assert last["finished"] is True
    assert last["result"] == "Failed"
    assert last["failureReason"] == "Deleted"
    wait_until("the CRR to be gone", lambda: crrs_in(kube, namespace) == [])
    kept = api.get(restarts_url(namespace, name)).json()  # within the retention
    assert kept["failureReason"] == "Deleted"
    # and the pod is free for the next restart
    simulator.daemon_down = False
    again = api.post(restarts_url(namespace), json={"pod": "web-0"})
    assert again.status_code == 201, again.text
    assert follow(api, namespace, again.json()["name"])[-1]["result"] == "Succeeded"


def test_list_filters_and_paginates(
    api: httpx.Client, namespace: str, make_pod: MakePod, simulator: Simulator
) -> None:
    for pod in ("a-0", "b-0", "c-0"):
        make_pod(pod, ["app"])
        created = api.post(restarts_url(namespace), json={"pod": pod, "name": f"r-{pod}"})
        assert created.status_code == 201, created.text
    for name in ("r-a-0", "r-b-0", "r-c-0"):
        follow(api, namespace, name)
    simulator.daemon_down = True
    make_pod("d-0", ["app"])
    assert (
        api.post(restarts_url(namespace), json={"pod": "d-0", "name": "r-d-0"}).status_code == 201
    )

    names: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if token:
            params["continue"] = token
        page = api.get(restarts_url(namespace), params=params).json()
        names += [r["name"] for r in page["items"]]
        pages += 1
        token = page["continue"]
        if token is None:
            break
    assert names == ["r-a-0", "r-b-0", "r-c-0", "r-d-0"]
    assert pages == 2

    def listed(**params: Any) -> list[str]:
        return [r["name"] for r in api.get(restarts_url(namespace), params=params).json()["items"]]

    assert listed(pod="b-0") == ["r-b-0"]
    assert listed(finished="false") == ["r-d-0"]
    assert listed(finished="true") == ["r-a-0", "r-b-0", "r-c-0"]
    assert listed(pod="b-0", finished="false") == []


# ---------------------------------------------------------------- health, metrics, readiness


def test_health_readiness_and_metrics(api: httpx.Client, namespace: str, make_pod: MakePod) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["scopes"][namespace]["synced"] is True
    make_pod("web-0", ["app"])
    name = api.post(restarts_url(namespace), json={"pod": "web-0"}).json()["name"]
    follow(api, namespace, name)
    api.get(restarts_url(namespace, "missing"))

    text = api.get("/metrics").text

    assert (
        'crr_gateway_http_requests_total{method="POST",'
        'route="/v1/namespaces/{namespace}/restarts",status="201"} 1.0'
    ) in text
    assert 'route="/v1/namespaces/{namespace}/restarts/{name}",status="404"} 1.0' in text
    assert "crr_gateway_http_request_duration_seconds_bucket" in text
    assert 'crr_gateway_restarts_finished_total{failure_reason="",result="Succeeded"} 1.0' in text
    assert 'crr_gateway_cache_restarts{state="live"} 1.0' in text
    assert "crr_gateway_watch_restarts_total" in text
    assert "crr_gateway_cache_ready 1.0" in text
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert api.get("/openapi.json").json()["info"]["title"] == "crr-gateway"


def test_not_ready_while_the_apiserver_is_unreachable(
    start_service: StartService, control_plane: ControlPlane, namespace: str, make_pod: MakePod
) -> None:
    api = start_service(watch_timeout_seconds=5)
    make_pod("web-0", ["app"])
    name = api.post(restarts_url(namespace), json={"pod": "web-0"}).json()["name"]
    follow(api, namespace, name)

    control_plane.stop_apiserver()
    try:
        wait_until("readiness to fail", lambda: api.get("/readyz").status_code == 503, timeout=30)
        body = assert_problem(api.get("/readyz"), 503)
        assert body["scopes"][namespace]["healthy"] is False
        # polls are still answered from the cache, without the apiserver
        assert api.get(restarts_url(namespace, name)).json()["result"] == "Succeeded"
        # and creates fail as unavailable, not 500
        assert_problem(api.post(restarts_url(namespace), json={"pod": "web-0"}), 503)
    finally:
        control_plane.start_apiserver()
    wait_until("readiness to return", lambda: api.get("/readyz").status_code == 200, timeout=60)

    def restartable() -> bool:  # kruise's webhook and the simulator are back too
        answer = api.post(restarts_url(namespace), json={"pod": "web-0"})
        if answer.status_code == 503:  # "not yet" is a 503 with Retry-After; nothing else
            assert int(answer.headers["retry-after"]) > 0, answer.text
            return False
        assert answer.status_code == 201, answer.text
        return True

    wait_until("creates to work again", restartable, timeout=60, interval=1)
    # leave the cluster as found: kruise's webhook sees new pods again, the daemon runs
    make_pod("web-1", ["app"])
    created = api.post(restarts_url(namespace), json={"pod": "web-1"})
    assert created.status_code == 201, created.text
    assert follow(api, namespace, created.json()["name"])[-1]["result"] == "Succeeded"


def test_a_service_without_a_reachable_apiserver_is_not_ready(
    start_service: StartService, tmp_path: Any, control_plane: ControlPlane, namespace: str
) -> None:
    del start_service
    text = control_plane.kubeconfig.read_text().replace(control_plane.url, "https://127.0.0.1:1")
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(text)
    settings = Settings(
        kubeconfig=dead, namespaces=[namespace], request_timeout_seconds=2, auth_mode="none"
    )
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:

        def noticed() -> str | None:
            """The error of the served namespace's watch, once it has tried and failed."""
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text  # never ready, before or after
            error: str | None = ready.json()["scopes"][namespace]["error"]
            return error

        error = wait_until("the service to notice the apiserver is unreachable", noticed)
        assert "cannot reach the apiserver" in error, error
        assert_problem(client.get(restarts_url(namespace, "x")), 503, "cache-not-ready")
        assert_problem(client.get(restarts_url(namespace)), 503, "cache-not-ready")
        refused = client.post(restarts_url(namespace), json={"pod": "web-0"})
        assert_problem(refused, 503, "kube-unavailable")
        assert int(refused.headers["retry-after"]) > 0
        assert client.get("/healthz").status_code == 200
