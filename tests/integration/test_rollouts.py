"""Rollouts on the real control plane (issue 9): a CloneSet the real kruise-manager fills,
Deployments and StatefulSets whose pods the test makes (no kube-controller-manager runs here),
a label selector, a PodDisruptionBudget; an independent pod watch witnesses the budget, the
containers' IDs and restart counts witness that each pod restarted exactly once.
(Failures, pause, resume, cancel, pods coming and going and the service dying mid-rollout:
test_rollouts_failures.py; bad input: test_rollouts_input.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from tests.support.api import crrs_in, restarts_url, start_service_in
from tests.support.rollouts import (
    UnreadyWatch,
    apps_v1,
    by_name,
    create_cloneset,
    create_rollout,
    create_workload,
    crrs_per_pod,
    follow_rollout,
    list_pods,
    read,
    restarted,
    rollout_crrs,
    rollout_objects,
    rollouts_url,
    run_pods,
    states,
)

FAST = {"unreadyGracePeriodSeconds": 0}  # these tests are not about kruise's unready grace


@pytest.fixture
def api(
    control_plane: ControlPlane, namespace: str, _simulator: Simulator
) -> Iterator[httpx.Client]:
    with ExitStack() as stack:
        yield start_service_in(stack, control_plane, [namespace])


# ---------------------------------------------------------------- the proof


def test_a_cloneset_of_six_restarts_each_pod_once_never_more_than_two_unready(
    api: httpx.Client, control_plane: ControlPlane, kube: k8s.ApiClient, namespace: str
) -> None:
    before = by_name(create_cloneset(kube, namespace, "shop", 6))

    with UnreadyWatch(control_plane, namespace, "app=shop") as witness:
        created = create_rollout(
            api,
            namespace,
            target={"kind": "CloneSet", "name": "shop"},
            containers=["app"],
            maxUnavailable=2,
            reason="new config",
            **FAST,
        )
        done = follow_rollout(api, namespace, created["name"])

    assert done["phase"] == "Succeeded", done
    assert done["target"] == {
        "kind": "CloneSet",
        "name": "shop",
        "apiVersion": "apps.kruise.io/v1alpha1",
    }
    assert (done["maxUnavailable"], done["resolvedMaxUnavailable"]) == (2, 2)
    assert done["counts"]["Succeeded"] == 6 and done["completedAt"] and done["reason"]
    assert states(done) == dict.fromkeys(before, "Succeeded")
    # the budget held, and was used: the independent watch saw two pods unready at once
    assert witness.peak == 2, witness.went_unready
    assert set(witness.went_unready) == set(before)
    # each pod's app container restarted exactly once, its sidecar not at all
    after = by_name(list_pods(kube, namespace, "app=shop"))
    assert after.keys() == before.keys()  # in place: no pod was replaced
    for name, pod in after.items():
        assert restarted(before[name], pod) == {"app": 1, "sidecar": 0}, name
    # one restart per pod, the one the rollout names, readable under /restarts
    assert crrs_per_pod(kube, namespace, done["name"]) == dict.fromkeys(before, 1)
    for entry in done["pods"]:
        restart = api.get(restarts_url(namespace, entry["restart"]))
        assert restart.status_code == 200, restart.text
        assert restart.json()["pod"] == entry["pod"]
        assert restart.json()["containers"] == ["app"]
    # kubectl shows it
    table = control_plane.kubectl("-n", namespace, "get", "rro")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "TARGET", "PHASE", "PROGRESS", "UNAVAILABLE", "AGE"]
    assert row.split()[:5] == [done["name"], "CloneSet/shop", "Succeeded", "6/6", "0"]


def test_the_dry_run_plan_creates_nothing_and_percentages_round_down(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pods(kube, namespace, ["web-a", "web-b"], {"app": "web"}, readiness_gate=False)
    run_pods(kube, namespace, ["web-c", "web-d", "web-e"], {"app": "web", "tier": "small"})
    five = {"selector": {"matchLabels": {"app": "web"}}}
    three = {"selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}

    def plan(body: dict[str, Any], max_unavailable: int | str) -> dict[str, Any]:
        response = api.post(
            rollouts_url(namespace),
            params={"dryRun": "true"},
            json={**body, "maxUnavailable": max_unavailable},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    dry = plan(five, "50%")
    assert dry["resolvedMaxUnavailable"] == 2  # 2.5 rounded down
    assert dry["maxUnavailable"] == "50%"
    assert dry["phase"] == "Progressing" and not dry["finished"]
    assert [p["pod"] for p in dry["pods"]] == ["web-a", "web-b", "web-c", "web-d", "web-e"]
    assert {(p["state"], p["restart"]) for p in dry["pods"]} == {("Waiting", None)}
    assert dry["counts"]["Waiting"] == 5
    assert plan(three, "10%")["resolvedMaxUnavailable"] == 1  # 0.3: at least one
    assert plan(three, "67%")["resolvedMaxUnavailable"] == 2  # 2.01
    assert plan(five, "100%")["resolvedMaxUnavailable"] == 5
    assert plan(five, 3)["resolvedMaxUnavailable"] == 3
    # nothing was created: no rollout object, no restart, and the list is empty
    assert rollout_objects(kube, namespace) == []
    assert crrs_in(kube, namespace) == []
    listed = api.get(rollouts_url(namespace))
    assert listed.status_code == 200 and listed.json()["items"] == []
    # a real create resolves the same way
    created = create_rollout(api, namespace, **five, maxUnavailable="50%", **FAST)
    assert created["resolvedMaxUnavailable"] == 2
    assert follow_rollout(api, namespace, created["name"])["phase"] == "Succeeded"


def test_the_same_idempotency_key_and_body_answer_the_same_rollout(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pods(kube, namespace, ["web-0", "web-1"], {"app": "web"}, readiness_gate=False)
    body = {"selector": {"matchLabels": {"app": "web"}}, "containers": ["app"], **FAST}
    key = {"Idempotency-Key": "deploy-4711"}

    first = api.post(rollouts_url(namespace), json=body, headers=key)
    again = api.post(rollouts_url(namespace), json=body, headers=key)
    # the same body written differently (a default spelled out) is the same request
    same = api.post(rollouts_url(namespace), json={**body, "maxUnavailable": 1}, headers=key)
    other = api.post(rollouts_url(namespace), json={**body, "maxUnavailable": 2}, headers=key)

    assert first.status_code == 201, first.text
    name = first.json()["name"]
    for replay in (again, same):
        assert replay.status_code == 200, replay.text
        assert replay.json()["name"] == name
        assert replay.headers["location"] == rollouts_url(namespace, name)
    problem = other.json()
    assert other.status_code == 422 and problem["type"].endswith(":idempotency-key-reused")
    assert name in problem["detail"]
    assert [o["metadata"]["name"] for o in rollout_objects(kube, namespace)] == [name]
    done = follow_rollout(api, namespace, name)
    assert done["phase"] == "Succeeded"
    # still the same rollout once it has finished, and still one restart per pod
    late = api.post(rollouts_url(namespace), json=body, headers=key)
    assert late.status_code == 200 and late.json()["name"] == name
    assert late.json()["phase"] == "Succeeded"
    assert crrs_per_pod(kube, namespace, name) == {"web-0": 1, "web-1": 1}


# ---------------------------------------------------------------- other targets


def test_a_deployment_restarts_the_pods_of_its_replicasets_only(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    labels = {"app": "api"}
    deployment = create_workload(kube, namespace, apps_v1("Deployment", "api", labels))
    replicaset = apps_v1("ReplicaSet", "api-7d9f", {**labels, "pod-template-hash": "7d9f"})
    replicaset["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "api",
            "uid": deployment["metadata"]["uid"],
            "controller": True,
        }
    ]
    replicaset = create_workload(kube, namespace, replicaset)
    # matches the Deployment's selector, but no ReplicaSet of it owns the pod
    stray_before = run_pods(kube, namespace, ["api-debug"], labels)[0]
    owned = ["api-7d9f-b2x4k", "api-7d9f-q8z2m", "api-7d9f-zz9r1"]
    run_pods(kube, namespace, owned, {**labels, "pod-template-hash": "7d9f"}, owned_by=replicaset)
    body = {"target": {"kind": "Deployment", "name": "api"}, "maxUnavailable": 1, **FAST}

    dry = api.post(rollouts_url(namespace), params={"dryRun": "true"}, json=body)
    assert dry.status_code == 200, dry.text
    assert [p["pod"] for p in dry.json()["pods"]] == owned  # by name; not api-debug

    done = follow_rollout(api, namespace, create_rollout(api, namespace, **body)["name"])
    assert done["phase"] == "Succeeded", done
    assert done["target"] == {"kind": "Deployment", "name": "api", "apiVersion": "apps/v1"}
    assert states(done) == dict.fromkeys(owned, "Succeeded")
    assert crrs_per_pod(kube, namespace, done["name"]) == dict.fromkeys(owned, 1)
    stray_after = read(kube, namespace, "api-debug")
    assert restarted(stray_before, stray_after) == {"app": 0, "sidecar": 0}


def test_a_statefulset_restarts_from_the_highest_ordinal_down(
    api: httpx.Client, control_plane: ControlPlane, kube: k8s.ApiClient, namespace: str
) -> None:
    labels = {"app": "db"}
    statefulset = create_workload(
        kube, namespace, apps_v1("StatefulSet", "db", labels, replicas=3, serviceName="db")
    )
    run_pods(kube, namespace, ["db-restore"], labels)  # selected, not owned
    names = ["db-0", "db-1", "db-2"]
    run_pods(kube, namespace, names, labels, owned_by=statefulset)
    body = {"target": {"kind": "StatefulSet", "name": "db"}, "containers": ["app"], **FAST}

    dry = api.post(rollouts_url(namespace), params={"dryRun": "true"}, json=body)
    assert dry.status_code == 200, dry.text
    assert [p["pod"] for p in dry.json()["pods"]] == ["db-2", "db-1", "db-0"]

    with UnreadyWatch(control_plane, namespace, "app=db") as witness:
        done = follow_rollout(api, namespace, create_rollout(api, namespace, **body)["name"])
    assert done["phase"] == "Succeeded", done
    assert [(p["pod"], p["state"]) for p in done["pods"]] == [
        ("db-2", "Succeeded"),
        ("db-1", "Succeeded"),
        ("db-0", "Succeeded"),
    ]
    # one at a time, highest ordinal first: the order the pods went unready in
    assert witness.order == ["db-2", "db-1", "db-0"]
    assert witness.peak == 1
    assert crrs_per_pod(kube, namespace, done["name"]) == dict.fromkeys(names, 1)


# ---------------------------------------------------------------- selectors and budgets


def test_a_selector_rollout_restarts_the_pods_it_matches(
    api: httpx.Client, kube: k8s.ApiClient, namespace: str
) -> None:
    run_pods(kube, namespace, ["a-0", "a-1"], {"team": "a", "role": "web"}, ["app"])
    run_pods(kube, namespace, ["a-2"], {"team": "a", "role": "batch"}, ["app"])
    run_pods(kube, namespace, ["b-0"], {"team": "b", "role": "web"}, ["app"])
    before = by_name(list_pods(kube, namespace, "team"))
    selector = {
        "matchLabels": {"team": "a"},
        "matchExpressions": [{"key": "role", "operator": "In", "values": ["web", "api"]}],
    }

    created = create_rollout(api, namespace, selector=selector, maxUnavailable=2, **FAST)
    assert created["selector"] == selector and created["target"] is None
    done = follow_rollout(api, namespace, created["name"])

    assert done["phase"] == "Succeeded", done
    assert states(done) == {"a-0": "Succeeded", "a-1": "Succeeded"}
    after = by_name(list_pods(kube, namespace, "team"))
    assert {n: restarted(before[n], p)["app"] for n, p in after.items()} == {
        "a-0": 1,
        "a-1": 1,
        "a-2": 0,
        "b-0": 0,
    }


def test_a_pod_disruption_budget_holds_the_rollout_below_max_unavailable(
    api: httpx.Client, control_plane: ControlPlane, kube: k8s.ApiClient, namespace: str
) -> None:
    names = [f"web-{i}" for i in range(5)]
    run_pods(kube, namespace, names, {"app": "web"}, ["app"])
    # 5 pods, at least 4 available: one at a time, whatever maxUnavailable says
    k8s.PolicyV1Api(kube).create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 4, "selector": {"matchLabels": {"app": "web"}}},
        },
    )

    with UnreadyWatch(control_plane, namespace, "app=web") as witness:
        created = create_rollout(
            api, namespace, selector={"matchLabels": {"app": "web"}}, maxUnavailable=3, **FAST
        )
        waiting = follow_rollout(
            api, namespace, created["name"], lambda r: "PodDisruptionBudget web" in r["message"]
        )
        done = follow_rollout(api, namespace, created["name"])

    assert waiting["phase"] == "Progressing"
    assert done["phase"] == "Succeeded", done
    assert done["resolvedMaxUnavailable"] == 3
    assert witness.peak == 1  # never more than the budget's allowance
    assert set(witness.went_unready) == set(names)
    assert crrs_per_pod(kube, namespace, done["name"]) == dict.fromkeys(names, 1)
    assert len(rollout_crrs(kube, namespace, done["name"])) == 5
