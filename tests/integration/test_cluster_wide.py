"""Cluster-wide mode (``CRR_GATEWAY_NAMESPACES=*``): one watch of the whole cluster serves every
namespace. Reads, long polls, the stale warning while the apiserver is away, and what changed
meanwhile (a restart deleted in one namespace, one made by someone else in another) once it is
back. The 410 relist in this mode: test_faults_watch_expiry.py.

The module runs on a control plane of its own (``uncached_cluster``), so the cluster the service
watches holds only what these tests make."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from service.app import create_app
from tests.support.api import GROUP, PLURAL, assert_problem, follow, restarts_url
from tests.support.faultproxy import FaultProxy
from tests.support.pods import run_pod
from tests.support.service_process import open_settings
from tests.support.serving import serve
from tests.support.waiting import wait_until
from tests.support.watch_expiry import UncachedCluster

STALE = '299 - "stale: apiserver unreachable since '


@pytest.fixture
def teams(uncached_cluster: UncachedCluster) -> tuple[str, str]:
    """Two fresh namespaces, each with running pods web-0 and web-1."""
    names = tuple(f"team-{team}-{secrets.token_hex(3)}" for team in "ab")
    for namespace in names:
        k8s.CoreV1Api(uncached_cluster.kube).create_namespace({"metadata": {"name": namespace}})
        for pod in ("web-0", "web-1"):
            run_pod(uncached_cluster.kube, namespace, pod)
    return names[0], names[1]


@pytest.fixture
def proxy(uncached_cluster: UncachedCluster) -> Iterator[FaultProxy]:
    with FaultProxy(uncached_cluster.plane.apiserver_port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def api(
    uncached_cluster: UncachedCluster, proxy: FaultProxy, tmp_path: Path
) -> Iterator[httpx.Client]:
    """The service serving every namespace, reaching the apiserver through ``proxy``."""
    plane = uncached_cluster.plane
    kubeconfig = proxy.kubeconfig(plane.kubeconfig, tmp_path / "proxied.kubeconfig")
    settings = open_settings(kubeconfig, ["*"], request_timeout_seconds=2)
    with ExitStack() as stack:
        url = stack.enter_context(serve(create_app(settings)))
        client = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        wait_until("the service to be ready", lambda: client.get("/readyz").status_code == 200)
        yield client


def names(api: httpx.Client, namespace: str) -> list[str]:
    listed = api.get(restarts_url(namespace))
    assert listed.status_code == 200, listed.text
    return [r["name"] for r in listed.json()["items"]]


def create(api: httpx.Client, namespace: str, pod: str) -> str:
    created = api.post(restarts_url(namespace), json={"pod": pod})
    assert created.status_code == 201, created.text
    name: str = created.json()["name"]
    return name


def test_one_watch_serves_every_namespace(
    api: httpx.Client, uncached_cluster: UncachedCluster, teams: tuple[str, str]
) -> None:
    team_a, team_b = teams
    simulator = uncached_cluster.simulator
    ready = api.get("/readyz").json()
    assert set(ready["scopes"]) == {"*"}, ready  # one watch, not one per namespace
    simulator.daemon_down = True  # the restarts wait until the test lets them go
    in_a, in_b = create(api, team_a, "web-0"), create(api, team_b, "web-0")

    # each restart is found in its namespace only; each namespace lists its own
    for namespace, name in ((team_a, in_a), (team_b, in_b)):
        got = api.get(restarts_url(namespace, name))
        assert got.status_code == 200, got.text
        assert got.json()["namespace"] == namespace
        assert "warning" not in got.headers
    assert_problem(api.get(restarts_url(team_b, in_a)), 404, "restart-not-found")
    assert names(api, team_a) == [in_a]
    assert names(api, team_b) == [in_b]
    # a namespace with no restart (not even created) is served too, and empty
    assert names(api, "nobody-here") == []
    assert_problem(api.get(restarts_url("nobody-here", in_a)), 404, "restart-not-found")

    # a long poll in one namespace wakes on that restart's change, whatever the other does
    version = api.get(restarts_url(team_b, in_b)).json()["resourceVersion"]
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(
            api.get, restarts_url(team_b, in_b), params={"wait": 30, "resourceVersion": version}
        )
        simulator.daemon_down = False
        changed = poll.result()
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == in_b
    assert changed.json()["resourceVersion"] != version
    for namespace, name in ((team_a, in_a), (team_b, in_b)):
        final = follow(api, namespace, name)[-1]
        assert final["result"] == "Succeeded", final
        assert final["namespace"] == namespace


def test_the_apiserver_away_answers_stale_in_every_namespace_and_nothing_is_lost(
    api: httpx.Client,
    uncached_cluster: UncachedCluster,
    proxy: FaultProxy,
    teams: tuple[str, str],
) -> None:
    team_a, team_b = teams
    simulator, crrs = uncached_cluster.simulator, k8s.CustomObjectsApi(uncached_cluster.kube)
    simulator.daemon_down = True
    kept, dropped = create(api, team_a, "web-0"), create(api, team_b, "web-0")

    proxy.paused = True  # a partition: nothing passes, and the connections open now break
    proxy.cut()
    try:
        wait_until(
            "answers to be marked stale",
            lambda: api.get(restarts_url(team_a, kept)).headers.get("warning", ""),
        )
        # every read is answered from the cache, in both namespaces, with the warning
        for namespace, path in (
            (team_a, restarts_url(team_a, kept)),
            (team_b, restarts_url(team_b, dropped)),
            (team_a, restarts_url(team_a)),
            (team_b, restarts_url(team_b)),
        ):
            answer = api.get(path)
            assert answer.status_code == 200, (namespace, answer.text)
            assert answer.headers["warning"].startswith(STALE), answer.headers
        assert api.get(restarts_url(team_a, kept)).json()["finished"] is False
        assert_problem(api.get("/readyz"), 503)

        # while the service is cut off: a restart deleted unfinished in one namespace, one
        # made by someone else in the other
        crrs.delete_namespaced_custom_object(GROUP, "v1beta1", team_b, PLURAL, dropped)
        made_elsewhere: dict[str, Any] = {
            "apiVersion": f"{GROUP}/v1beta1",
            "kind": "ContainerRecreateRequest",
            "metadata": {"name": "made-elsewhere"},
            "spec": {"podName": "web-1", "containers": [{"name": "app"}]},
        }
        crrs.create_namespaced_custom_object(GROUP, "v1beta1", team_a, PLURAL, made_elsewhere)
    finally:
        proxy.paused = False

    wait_until(
        "answers to be current again",
        lambda: "warning" not in api.get(restarts_url(team_a, kept)).headers,
    )
    # the relist brought both changes, each in its namespace
    gone = api.get(restarts_url(team_b, dropped))
    assert gone.status_code == 200, gone.text
    assert gone.json()["finished"] is True
    assert (gone.json()["result"], gone.json()["failureReason"]) == ("Failed", "Deleted")
    assert names(api, team_a) == sorted([kept, "made-elsewhere"])
    assert names(api, team_b) == [dropped]
    assert api.get("/readyz").status_code == 200

    simulator.daemon_down = False
    for name in (kept, "made-elsewhere"):
        final = follow(api, team_a, name)[-1]
        assert final["result"] == "Succeeded", final
    assert "warning" not in api.get(restarts_url(team_b)).headers
