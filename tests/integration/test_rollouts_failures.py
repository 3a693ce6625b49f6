"""Rollouts when things go wrong, on the real control plane: a pod whose restart fails (the
simulated node's ``crr-gateway.test/fail-kill`` annotation), pause, resume and cancel, pods
deleted and added mid-rollout, and the service killed mid-rollout with other replicas finishing
it. (The happy paths: test_rollouts.py; bad input: test_rollouts_input.py.)"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from harness.simulator.runtime import INJECTED_KILL_FAILURE
from tests.support.api import assert_problem, restarts_url, start_service_in
from tests.support.rollouts import (
    FAIL_KILL,
    UnreadyWatch,
    by_name,
    create_cloneset,
    create_rollout,
    crrs_per_pod,
    follow_rollout,
    in_state,
    list_pods,
    restarted,
    rollout_crrs,
    rollouts_url,
    run_pods,
    scale_cloneset,
    states,
)
from tests.support.service_process import ServiceProcess, running_replicas
from tests.support.waiting import wait_until

FAST = {"unreadyGracePeriodSeconds": 0}  # not about kruise's unready grace
WEB = {"app": "web"}
SELECT_WEB = {"matchLabels": WEB}


@pytest.fixture
def api(
    control_plane: ControlPlane, namespace: str, _simulator: Simulator
) -> Iterator[httpx.Client]:
    with ExitStack() as stack:
        yield start_service_in(stack, control_plane, [namespace])


def act(api: httpx.Client, namespace: str, name: str, action: str) -> dict[str, Any]:
    response = api.post(rollouts_url(namespace, name, action))
    assert response.status_code == 200, response.text
    rollout: dict[str, Any] = response.json()
    return rollout


# ---------------------------------------------------------------- a failing pod


def test_a_failed_restart_pauses_the_rollout_and_resume_goes_on_with_the_next_pods(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pods(kube, namespace, ["web-0"], WEB, annotations={FAIL_KILL: "app"})
    run_pods(kube, namespace, ["web-1", "web-2"], WEB)
    before = by_name(list_pods(kube, namespace, "app=web"))

    created = create_rollout(api, namespace, selector=SELECT_WEB, containers=["app"], **FAST)
    paused = follow_rollout(api, namespace, created["name"], lambda r: r["phase"] == "Paused")

    assert paused["paused"] and not paused["finished"]
    assert states(paused) == {"web-0": "Failed", "web-1": "Waiting", "web-2": "Waiting"}
    assert "web-0" in paused["message"] and INJECTED_KILL_FAILURE in paused["message"]
    assert INJECTED_KILL_FAILURE in paused["pods"][0]["message"]
    assert crrs_per_pod(kube, namespace, created["name"]) == {"web-0": 1}

    resumed = act(api, namespace, created["name"], "resume")
    assert resumed["phase"] == "Progressing" and not resumed["paused"]
    done = follow_rollout(api, namespace, created["name"])

    # it went on with the next pods; the failed one stays failed and is not tried again
    assert done["phase"] == "Failed", done
    assert states(done) == {"web-0": "Failed", "web-1": "Succeeded", "web-2": "Succeeded"}
    assert "web-0" in done["message"]
    assert crrs_per_pod(kube, namespace, created["name"]) == {"web-0": 1, "web-1": 1, "web-2": 1}
    after = by_name(list_pods(kube, namespace, "app=web"))
    assert {n: restarted(before[n], p)["app"] for n, p in after.items()} == {
        "web-0": 0,
        "web-1": 1,
        "web-2": 1,
    }


def test_without_pause_on_failure_the_rollout_goes_on_and_ends_failed(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pods(kube, namespace, ["web-0"], WEB, annotations={FAIL_KILL: "app"})
    run_pods(kube, namespace, ["web-1", "web-2"], WEB)

    created = create_rollout(
        api, namespace, selector=SELECT_WEB, containers=["app"], pauseOnFailure=False, **FAST
    )
    done = follow_rollout(api, namespace, created["name"])

    assert done["phase"] == "Failed", done
    assert not done["paused"] and done["pauseOnFailure"] is False
    assert states(done) == {"web-0": "Failed", "web-1": "Succeeded", "web-2": "Succeeded"}
    assert done["counts"]["Failed"] == 1 and done["counts"]["Succeeded"] == 2
    assert "web-0" in done["message"] and done["completedAt"]


# ---------------------------------------------------------------- cancel


def test_cancel_deletes_the_restarts_not_started_and_lets_running_ones_finish(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str, simulator: Simulator
) -> None:
    names = [f"web-{i}" for i in range(4)]
    before = by_name(run_pods(kube, namespace, names, WEB, ["app"]))
    policy = k8s.PolicyV1Api(kube)
    # four pods, three available at least: the rollout starts web-0 alone
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        {"metadata": {"name": "web"}, "spec": {"minAvailable": 3, "selector": SELECT_WEB}},
    )
    # kruise keeps the pod unready this long before the kill: time to take the node's daemon
    # down while web-0's restart has started (Recreating) and nothing is killed yet
    created = create_rollout(
        api, namespace, selector=SELECT_WEB, maxUnavailable=2, unreadyGracePeriodSeconds=5
    )
    name = created["name"]
    first = follow_rollout(api, namespace, name, lambda r: bool(in_state(r, "Restarting")))
    assert in_state(first, "Restarting") == ["web-0"]
    web_0 = first["pods"][0]["restart"]

    def web_0_restart_started() -> bool:
        # (the rollout names the restart once it claims the pod, just before creating it)
        response = api.get(restarts_url(namespace, web_0))
        return response.status_code == 200 and response.json()["phase"] == "Recreating"

    wait_until("web-0's restart to start", web_0_restart_started)
    simulator.daemon_down = True  # restarts made from now on are not started
    policy.delete_namespaced_pod_disruption_budget("web", namespace)
    second = follow_rollout(api, namespace, name, lambda r: r["counts"]["Restarting"] == 2)
    assert in_state(second, "Restarting") == ["web-0", "web-1"]
    web_1 = second["pods"][1]["restart"]
    pending = wait_until(
        "web-1's restart to be made",
        lambda: (r := api.get(restarts_url(namespace, web_1))).status_code == 200 and r.json(),
    )
    assert pending["phase"] == "Pending"
    # a single restart of a pod the rollout is restarting waits its turn, as for any restart
    assert_problem(
        api.post(restarts_url(namespace), json={"pod": "web-0"}), 409, "restart-in-progress"
    )

    cancelling = act(api, namespace, name, "cancel")
    assert not cancelling["finished"]
    skipped = follow_rollout(api, namespace, name, lambda r: r["pods"][1]["state"] == "Skipped")
    assert skipped["phase"] == "Progressing" and "cancelling" in skipped["message"]
    assert states(skipped) == {
        "web-0": "Restarting",
        "web-1": "Skipped",
        "web-2": "Skipped",
        "web-3": "Skipped",
    }
    # the restart kruise had not started is deleted (just after the write that says so)
    wait_until(
        "web-1's restart to be deleted",
        lambda: [c["metadata"]["name"] for c in rollout_crrs(kube, namespace, name)] == [web_0],
    )
    deleted = wait_until(
        "the service to see it deleted",
        lambda: (r := api.get(restarts_url(namespace, web_1)).json())["finished"] and r,
    )
    assert (deleted["result"], deleted["failureReason"]) == ("Failed", "Deleted")

    simulator.daemon_down = False
    done = follow_rollout(api, namespace, name)

    assert done["phase"] == "Cancelled", done
    assert states(done)["web-0"] == "Succeeded"
    assert done["counts"] == {
        "Waiting": 0,
        "Restarting": 0,
        "Succeeded": 1,
        "Failed": 0,
        "Skipped": 3,
        "Gone": 0,
    }
    after = by_name(list_pods(kube, namespace, "app=web"))
    assert {n: restarted(before[n], p)["app"] for n, p in after.items()} == {
        "web-0": 1,
        "web-1": 0,
        "web-2": 0,
        "web-3": 0,
    }


# ---------------------------------------------------------------- pods coming and going


def test_a_pod_deleted_mid_rollout_is_gone_and_pods_added_are_skipped(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    create_cloneset(kube, namespace, "shop", 3, ["app"])
    created = create_rollout(api, namespace, target={"kind": "CloneSet", "name": "shop"}, **FAST)
    name = created["name"]
    paused = act(api, namespace, name, "pause")  # hold it while pods come and go
    assert paused["phase"] == "Paused" and paused["paused"]
    planned = [p["pod"] for p in created["pods"]]
    last = planned[-1]  # its turn has not come: at most one pod is started before the pause
    assert states(paused)[last] == "Waiting"

    k8s.CoreV1Api(kube).delete_namespaced_pod(last, namespace, grace_period_seconds=0)
    scale_cloneset(kube, namespace, "shop", 4)  # kruise replaces the deleted one and adds one
    newcomers = follow_rollout(
        api, namespace, name, lambda r: r["counts"]["Skipped"] == 2 and r["counts"]["Gone"] == 1
    )
    assert newcomers["phase"] == "Paused"
    act(api, namespace, name, "resume")
    done = follow_rollout(api, namespace, name)

    assert done["phase"] == "Succeeded", done
    final = states(done)
    assert final[last] == "Gone"
    assert [final[p] for p in planned[:-1]] == ["Succeeded", "Succeeded"]
    added = sorted(p for p in final if p not in planned)
    assert len(added) == 2 and {final[p] for p in added} == {"Skipped"}
    messages = {p["pod"]: p["message"] for p in done["pods"]}
    assert "deleted" in messages[last]
    assert all("created after the rollout began" in messages[p] for p in added)
    current = {p["metadata"]["name"] for p in list_pods(kube, namespace, "app=shop")}
    assert current == {*planned[:-1], *added}
    assert crrs_per_pod(kube, namespace, name) == dict.fromkeys(planned[:-1], 1)


# ---------------------------------------------------------------- the service dies


def test_a_rollout_survives_the_service_killed_mid_way_and_two_replicas_finish_it(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    _simulator: Simulator,
    tmp_path: Path,
) -> None:
    before = by_name(create_cloneset(kube, namespace, "shop", 6))
    with UnreadyWatch(control_plane, namespace, "app=shop") as witness:
        first = ServiceProcess(control_plane.kubeconfig, namespace, tmp_path / "first.log")
        try:
            wait_until("the first replica to be ready", first.ready, timeout=60)
            with httpx.Client(base_url=first.url, timeout=30) as api:
                # kruise keeps each pod unready a second before the kill: the first pods are
                # still restarting when this replica dies
                created = create_rollout(
                    api,
                    namespace,
                    target={"kind": "CloneSet", "name": "shop"},
                    containers=["app"],
                    maxUnavailable=2,
                    unreadyGracePeriodSeconds=1,
                )
                name = created["name"]
                started = follow_rollout(api, namespace, name, lambda r: r["counts"]["Waiting"] < 6)
            assert started["counts"]["Waiting"] >= 2  # mid-rollout
            first.signal(signal.SIGKILL)
            first.process.wait(10)
        finally:
            first.stop()

        with (
            running_replicas(control_plane.kubeconfig, namespace, tmp_path) as replicas,
            httpx.Client(base_url=replicas[1].url, timeout=30) as api,
        ):
            done = follow_rollout(api, namespace, name)

    assert done["phase"] == "Succeeded", done
    assert states(done) == dict.fromkeys(before, "Succeeded")
    # no pod restarted twice: one restart each, each app container restarted exactly once
    assert crrs_per_pod(kube, namespace, name) == dict.fromkeys(before, 1)
    after = by_name(list_pods(kube, namespace, "app=shop"))
    assert after.keys() == before.keys()
    for pod, now in after.items():
        assert restarted(before[pod], now) == {"app": 1, "sidecar": 0}, pod
    # and the budget held throughout, across the crash and the two replicas
    assert 1 <= witness.peak <= 2
    assert set(witness.went_unready) == set(before)
