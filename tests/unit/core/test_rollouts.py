"""The pure rules of a rollout (service/core/selection.py and rollouts.py): selection, budget,
order, disruption budgets and one controller step, on pod records built from the apiserver's
objects as the service builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.core import rollouts as rules
from service.core import selection
from service.core.errors import RequestInvalid
from service.core.pods import Pod
from service.core.reading import restart_from_crr

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
Obj = dict[str, Any]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str,
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    ids: dict[str, str] | None = None,
    ready_since: datetime = EARLIER,
    uid: str | None = None,
    owner: tuple[str, str] | None = None,
) -> Pod:
    ids = ids if ids is not None else {"app": f"containerd://{name}-1"}
    obj: Obj = {
        "metadata": {"name": name, "uid": uid or f"uid-{name}", "labels": labels or {"app": "x"}},
        "spec": {"containers": [{"name": c} for c in ids], "nodeName": "n1"},
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": stamp(ready_since),
                }
            ],
            "containerStatuses": [
                {"name": c, "containerID": cid, "ready": ready} for c, cid in ids.items()
            ],
        },
    }
    if owner is not None:
        kind, owner_uid = owner
        obj["metadata"]["ownerReferences"] = [
            {"kind": kind, "name": "owner", "uid": owner_uid, "controller": True}
        ]
    return Pod.from_object(obj)


def rollout(pods: list[Pod], *, max_unavailable: int = 1, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "roll", "namespace": "ns", "generation": 1},
        "spec": {
            "podSelector": {"matchLabels": {"app": "x"}},
            "selector": {"matchLabels": {"app": "x"}},
            "maxUnavailable": max_unavailable,
            "resolvedMaxUnavailable": max_unavailable,
            "pauseOnFailure": True,
            "pods": [{"name": p.name, "uid": p.uid} for p in pods],
            **spec,
        },
    }


def crr(name: str, pod_name: str, *, phase: str = "", done: bool = False, ok: bool = True) -> Any:
    status: Obj = {}
    if phase:
        status["phase"] = phase
    if done:
        status["phase"] = "Completed"
        status["completionTime"] = stamp(NOW)
        status["containerRecreateStates"] = [
            {
                "name": "app",
                "phase": "Succeeded" if ok else "Failed",
                "isKilled": ok,
                "message": "" if ok else "kill container error: boom",
            }
        ]
    return restart_from_crr(
        {
            "apiVersion": "apps.kruise.io/v1beta1",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
            "spec": {"podName": pod_name, "containers": [{"name": "app"}]},
            "status": status,
        }
    )


def step(obj: Obj, members: list[Pod], restarts: dict[str, Any] | None = None, **kw: Any) -> Any:
    return rules.decide(obj, members, restarts or {}, kw.get("budgets", []), members, NOW)


def advance(obj: Obj, result: Any) -> Obj:
    return {**obj, "status": result.status}


# ---------------------------------------------------------------- selection and budget


def test_selector_semantics_follow_kubernetes() -> None:
    selector = {
        "matchLabels": {"app": "x"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert selection.selector_matches(selector, {"app": "x", "tier": "web"})
    assert not selection.selector_matches(selector, {"app": "x", "tier": "db"})
    assert not selection.selector_matches(selector, {"app": "x", "tier": "web", "canary": "1"})
    assert not selection.selector_matches(selector, {"tier": "web"})
    assert selection.selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}
    )


@pytest.mark.parametrize(
    ("selector", "words"),
    [
        ({}, "every pod"),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "needs values"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["1"]}]}, "no values"),
        ({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["1"]}]}, "Near"),
    ],
)
def test_bad_selectors_are_refused_with_the_reason(selector: Obj, words: str) -> None:
    with pytest.raises(RequestInvalid, match=words):
        selection.check_selector(selector)


@pytest.mark.parametrize(
    ("value", "selected", "resolved"),
    [(1, 10, 1), (3, 2, 3), ("25%", 10, 2), ("25%", 3, 1), ("100%", 7, 7), ("50%", 5, 2)],
)
def test_max_unavailable_resolves_percentages_down_and_at_least_one(
    value: int | str, selected: int, resolved: int
) -> None:
    assert selection.resolve_max_unavailable(value, selected) == resolved


@pytest.mark.parametrize("value", [0, -1, "0%", "abc", "101%", "12.5%", True])
def test_max_unavailable_refuses_nonsense(value: int | str) -> None:
    with pytest.raises(RequestInvalid, match="maxUnavailable"):
        selection.resolve_max_unavailable(value, 10)


def test_unknown_kind_names_the_supported_ones() -> None:
    with pytest.raises(RequestInvalid, match="CloneSet") as raised:
        selection.workload_kind("CronJob", None)
    assert "apps/v1/Deployment" in raised.value.extra["supportedKinds"]
    assert selection.workload_kind("CloneSet", None).group == "apps.kruise.io"
    assert selection.workload_kind("StatefulSet", "apps.kruise.io/v1beta1").ordinal_order


def test_containers_missing_from_some_pods_name_those_pods() -> None:
    pods = [pod("a", ids={"app": "1", "side": "2"}), pod("b", ids={"app": "3"})]
    with pytest.raises(RequestInvalid, match="b: side") as raised:
        selection.check_containers(pods, ["app", "side"])
    assert raised.value.extra["podsMissingContainers"] == {"b": ["side"]}
    with pytest.raises(RequestInvalid, match="omit containers"):
        selection.check_containers(pods, [])
    selection.check_containers(pods, ["app"])


def test_order_puts_unready_first_then_ordinals_down_or_names() -> None:
    pods = [pod("web-1"), pod("web-10"), pod("web-2", ready=False), pod("web-0")]
    by_ordinal = [p.name for p in selection.order_plan(pods, by_ordinal=True)]
    by_name = [p.name for p in selection.order_plan(pods, by_ordinal=False)]
    assert by_ordinal == ["web-2", "web-10", "web-1", "web-0"]
    assert by_name == ["web-2", "web-0", "web-1", "web-10"]


def test_restart_names_are_stable_per_pod_and_short() -> None:
    first = rules.restart_name("r" * 60, "pod", "uid-1")
    assert first == rules.restart_name("r" * 60, "pod", "uid-1")
    assert first != rules.restart_name("r" * 60, "pod", "uid-2")
    assert len(first) <= 63


def test_disruption_budget_allowance_follows_the_disruption_controller() -> None:
    pods = [pod(n) for n in "abcd"]
    min_two = selection.DisruptionBudget(
        "PodDisruptionBudget", "pdb", {"matchLabels": {"app": "x"}}, min_available=2
    )
    assert min_two.allowance(pods, set()) == 2
    assert min_two.allowance(pods, {"a"}) == 1
    max_25 = selection.DisruptionBudget(
        "PodDisruptionBudget", "pdb", {"matchLabels": {"app": "x"}}, max_unavailable="25%"
    )
    assert max_25.allowance(pods, set()) == 1  # 25% of 4 rounds up to 1
    assert max_25.allowance([*pods[:3], pod("d", ready=False)], set()) == 0


# ---------------------------------------------------------------- one step at a time


def test_first_step_claims_as_many_as_the_budget_allows() -> None:
    pods = [pod(n) for n in ("a", "b", "c")]
    result = step(rollout(pods, max_unavailable=2), pods)
    assert result.start == ["a", "b"]
    states = {p["name"]: p for p in result.status["pods"]}
    assert states["a"]["state"] == "Restarting"
    assert states["a"]["containerIDs"] == {"app": "containerd://a-1"}
    assert states["a"]["restart"] == rules.restart_name("roll", "a", "uid-a")
    assert states["c"]["state"] == "Waiting"
    assert result.status["unavailable"] == 2
    assert result.status["phase"] == "Progressing"
    assert result.changed


def test_pods_unavailable_outside_the_rollout_spend_the_budget() -> None:
    pods = [pod("a"), pod("b")]
    outsider = pod("z", ready=False)
    obj = rollout(pods, max_unavailable=1)
    result = rules.decide(obj, [*pods, outsider], {}, [], [*pods, outsider], NOW)
    assert result.start == []
    assert "not restarted by this rollout: z" in result.status["message"]
    skipped = {p["name"]: p for p in result.status["pods"]}["z"]
    assert skipped["state"] == "Skipped"


def test_an_unready_pod_of_the_plan_restarts_first_at_no_cost() -> None:
    pods = [pod("a"), pod("b", ready=False)]
    result = step(rollout(pods, max_unavailable=1), pods)
    assert result.start == ["b"]
    assert result.status["unavailable"] == 1


def test_a_succeeded_pod_counts_unavailable_until_its_new_containers_are_ready() -> None:
    pods = [pod("a"), pod("b")]
    obj = advance(rollout(pods), step(rollout(pods), pods))  # a claimed
    name = rules.restart_name("roll", "a", "uid-a")
    done = {name: crr(name, "a", done=True)}
    # the pod cache still shows the old container: a is not back yet, b must wait
    result = step(obj, pods, done)
    assert {p["name"]: p["state"] for p in result.status["pods"]}["a"] == "Succeeded"
    assert result.start == []
    assert "waiting for pod a" in result.status["message"]
    # the new container is running and ready: b goes
    renewed = [pod("a", ids={"app": "containerd://a-2"}, ready_since=NOW), pods[1]]
    result = step(advance(obj, result), renewed, done)
    assert result.start == ["b"]


def test_min_ready_seconds_holds_the_next_pod_back() -> None:
    pods = [pod("a"), pod("b")]
    obj = rollout(pods, minReadySeconds=30)
    obj = advance(obj, step(obj, pods))
    name = rules.restart_name("roll", "a", "uid-a")
    done = {name: crr(name, "a", done=True)}
    fresh = [
        pod("a", ids={"app": "containerd://a-2"}, ready_since=NOW - timedelta(seconds=10)),
        pods[1],
    ]
    assert step(obj, fresh, done).start == []
    settled = [
        pod("a", ids={"app": "containerd://a-2"}, ready_since=NOW - timedelta(seconds=31)),
        pods[1],
    ]
    # completionTime of the CRR is NOW: it must also be 30 s behind
    done_early = {name: crr(name, "a", done=True)}
    later = rules.decide(obj, settled, done_early, [], settled, NOW + timedelta(seconds=31))
    assert later.start == ["b"]


def test_a_failure_pauses_and_resume_goes_on_with_the_next() -> None:
    pods = [pod("a"), pod("b")]
    obj = advance(rollout(pods), step(rollout(pods), pods))
    name = rules.restart_name("roll", "a", "uid-a")
    failed = {name: crr(name, "a", done=True, ok=False)}
    result = step(obj, pods, failed)
    assert result.pause
    assert result.status["phase"] == "Paused"
    assert "pod a failed" in result.status["message"]
    assert "kill container error" in result.status["message"]
    assert result.start == []
    # resumed: spec.paused false again; the failed pod stays Failed and b starts
    resumed = advance(obj, result)
    resumed["spec"] = {**resumed["spec"], "paused": False}
    result = step(resumed, pods, failed)
    assert not result.pause
    assert result.start == ["b"]
    assert {p["name"]: p["state"] for p in result.status["pods"]}["a"] == "Failed"


def test_without_pause_on_failure_it_ends_failed() -> None:
    pods = [pod("a")]
    obj = rollout(pods, pauseOnFailure=False)
    obj = advance(obj, step(obj, pods))
    name = rules.restart_name("roll", "a", "uid-a")
    result = step(obj, pods, {name: crr(name, "a", done=True, ok=False)})
    assert result.finished
    assert result.status["phase"] == "Failed"
    assert result.status["completionTime"] == stamp(NOW)


def test_all_succeeded_ends_succeeded_once_available() -> None:
    pods = [pod("a")]
    obj = advance(rollout(pods), step(rollout(pods), pods))
    name = rules.restart_name("roll", "a", "uid-a")
    renewed = [pod("a", ids={"app": "containerd://a-2"}, ready_since=NOW)]
    result = step(obj, renewed, {name: crr(name, "a", done=True)})
    assert result.finished
    assert result.status["phase"] == "Succeeded"
    assert result.status["progress"] == "1/1"


def test_cancel_deletes_unstarted_restarts_and_skips_the_rest() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    obj = rollout(pods, max_unavailable=2)
    obj = advance(obj, step(obj, pods))  # a, b claimed
    obj["spec"]["cancelled"] = True
    na, nb = (rules.restart_name("roll", n, f"uid-{n}") for n in "ab")
    restarts = {na: crr(na, "a", phase="Recreating"), nb: crr(nb, "b", phase="Pending")}
    result = step(obj, pods, restarts)
    states = {p["name"]: p["state"] for p in result.status["pods"]}
    # b's restart is deleted only at the version seen, and b is called Skipped only once the
    # deletion shows: a crash in between leaves it Restarting, never Skipped while it runs
    assert result.delete_restarts == [(nb, "1")]
    assert states == {"a": "Restarting", "b": "Restarting", "c": "Skipped"}
    assert result.status["phase"] == "Progressing"
    assert "cancelling" in result.status["message"]
    obj = advance(obj, result)
    deleted = restart_from_crr(
        {
            "metadata": {"name": nb, "namespace": "ns", "resourceVersion": "2"},
            "spec": {"podName": "b", "containers": [{"name": "app"}]},
        },
        deleted=True,
    )
    result = step(obj, pods, {**restarts, nb: deleted})
    assert {p["name"]: p["state"] for p in result.status["pods"]}["b"] == "Skipped"
    restarts[nb] = deleted
    restarts[na] = crr(na, "a", done=True)
    renewed = [pod("a", ids={"app": "containerd://a-2"}, ready_since=NOW), *pods[1:]]
    result = step(advance(obj, result), renewed, restarts)
    assert result.status["phase"] == "Cancelled"
    assert result.finished


def test_deleted_and_replaced_pods_are_gone_and_newcomers_skipped() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    obj = rollout(pods)
    now_pods = [pod("b", uid="uid-b-new"), pod("c"), pod("d")]
    result = step(obj, now_pods)
    states = {p["name"]: p["state"] for p in result.status["pods"]}
    assert states == {"a": "Gone", "b": "Gone", "c": "Restarting", "d": "Skipped"}
    assert result.start == ["c"]


def test_a_workload_rollout_lists_and_counts_only_the_pods_the_workload_owns() -> None:
    """A target's selector can match pods the workload does not own (a debug copy, another
    owner's): never listed, never counted against the budget, whenever they were made."""
    planned = [pod("a", owner=("CloneSet", "cs-uid")), pod("b", owner=("CloneSet", "cs-uid"))]
    obj = rollout(planned)
    obj["spec"]["target"] = {
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "name": "shop",
        "uid": "cs-uid",
    }
    stray = pod("debug", ready=False)  # unready, and no owner at all
    foreign = pod("other", ready=False, owner=("ReplicaSet", "rs-uid"))
    newcomer = pod("c", owner=("CloneSet", "cs-uid"))
    result = step(obj, [*planned, stray, foreign, newcomer])
    states = {p["name"]: p["state"] for p in result.status["pods"]}
    assert states == {"a": "Restarting", "b": "Waiting", "c": "Skipped"}
    assert result.status["unavailable"] == 1  # a, not the unready strays


def test_a_deployment_rollout_owns_pods_through_replicasets() -> None:
    planned = [pod("a", owner=("ReplicaSet", "rs-1"))]
    obj = rollout(planned)
    obj["spec"]["target"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "deploy-uid",
    }
    rolled = pod("b", owner=("ReplicaSet", "rs-2"))  # a new ReplicaSet of the same Deployment
    result = step(obj, [*planned, rolled, pod("bare")])
    assert {p["name"]: p["state"] for p in result.status["pods"]} == {
        "a": "Restarting",
        "b": "Skipped",
    }


def test_a_missing_restart_is_reported_for_the_controller_to_look_up() -> None:
    pods = [pod("a")]
    obj = advance(rollout(pods), step(rollout(pods), pods))
    result = step(obj, pods, {})
    assert result.missing_restarts == ["a"]
    assert not result.changed


def test_a_disruption_budget_blocks_and_says_so() -> None:
    pods = [pod("a"), pod("b")]
    pdb = selection.DisruptionBudget(
        "PodDisruptionBudget", "keep-two", {"matchLabels": {"app": "x"}}, min_available=2
    )
    result = step(rollout(pods, max_unavailable=2), pods, budgets=[pdb])
    assert result.start == []
    assert "PodDisruptionBudget keep-two" in result.status["message"]


def test_finished_rollouts_do_not_change() -> None:
    pods = [pod("a")]
    obj = rollout(pods)
    obj["status"] = {"phase": "Succeeded", "message": "", "pods": [], "completionTime": "x"}
    assert not rules.is_finished(rollout(pods))
    assert rules.is_finished(obj)


def test_overlap_names_the_active_rollout_sharing_a_pod() -> None:
    other = rollout([pod("a")])
    other["metadata"]["name"] = "other"
    assert rules.overlapping({"uid-a"}, [other]) == "other"
    assert rules.overlapping({"uid-b"}, [other]) is None
    other["status"] = {"phase": "Succeeded"}
    assert rules.overlapping({"uid-a"}, [other]) is None


def test_a_pod_deleted_during_its_restart_is_gone_not_failed() -> None:
    pods = [pod("a")]
    obj = advance(rollout(pods), step(rollout(pods), pods))
    name = rules.restart_name("roll", "a", "uid-a")
    gone = restart_from_crr(
        {
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": "2"},
            "spec": {"podName": "a", "containers": [{"name": "app"}]},
            "status": {
                "phase": "Completed",
                "completionTime": stamp(NOW),
                "message": "pod has gone",
            },
        }
    )
    result = step(obj, [], {name: gone})
    assert {p["name"]: p["state"] for p in result.status["pods"]}["a"] == "Gone"
    assert result.status["phase"] == "Succeeded"


def test_a_pod_busy_with_another_restart_is_passed_over_for_now() -> None:
    pods = [pod("a"), pod("b")]
    result = rules.decide(rollout(pods), pods, {}, [], pods, NOW, busy={"a": "manual-1"})
    assert result.start == ["b"]
    assert "manual-1" in result.status["message"]
