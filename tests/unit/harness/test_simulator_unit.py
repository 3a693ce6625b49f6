"""The simulated kruise-daemon's pure decisions and the work queue, checked on plain dicts
(no cluster, no client mocks). The kubelet's are in test_simulator_node_unit.py."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.simulator.daemon import (
    Step,
    choose_crr_version,
    current_recreate_states,
    manage_step,
    newest_containers,
    pick_crr,
    recreate_state,
    runtime_error,
    sync_container_statuses,
    unready_grace_remaining,
)
from harness.simulator.objects import ANNOTATION_SYNC_STATUSES, ANNOTATION_UNREADY_ACQUIRED
from harness.simulator.plumbing import RateLimiter, WorkQueue
from harness.simulator.runtime import Container

Obj = dict[str, Any]
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
OLD = {"a": "containerd://" + "a" * 64, "b": "containerd://" + "b" * 64}
NEW = {"a": "containerd://" + "1" * 64, "b": "containerd://" + "2" * 64}


def crr(
    containers: tuple[str, ...] = ("a",),
    *,
    name: str = "crr",
    created: str = "2026-11-27T11:59:00Z",
    phase: str | None = None,
    states: list[Obj] | None = None,
    snapshot: list[Obj] | None = None,
    **strategy: Any,
) -> Obj:
    status: Obj = {}
    if phase is not None:
        status["phase"] = phase
    if states is not None:
        status["containerRecreateStates"] = states
    if snapshot is not None:
        status["containerStatusSnapshot"] = snapshot
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "creationTimestamp": created,
            "labels": {"crr.apps.kruise.io/pod-uid": "uid-1"},
        },
        "spec": {
            "podName": "pod",
            "containers": [
                {"name": c, "statusContext": {"containerID": OLD[c], "restartCount": 0}}
                for c in containers
            ],
            "strategy": {"failurePolicy": "Fail", **strategy},
        },
        "status": status,
    }


def running(name: str, container_id: str, *, age: float = 60.0, restarts: int = 0) -> Container:
    return Container(container_id, "uid-1", name, "img", restarts, NOW - timedelta(seconds=age))


def exited(name: str, container_id: str, *, restarts: int = 0) -> Container:
    return replace(
        running(name, container_id, restarts=restarts),
        finished_at=NOW - timedelta(seconds=1),
        exit_code=143,
    )


def synced(name: str, *, ready: bool = True) -> Obj:
    return {"name": name, "ready": ready, "restartCount": 1, "containerID": NEW[name]}


def no_kill(name: str, container_id: str) -> str | None:
    raise AssertionError(f"unexpected kill of {name}")


class Kills:
    """Records kills; fails those listed."""

    def __init__(self, failing: dict[str, str] | None = None) -> None:
        self.killed: list[tuple[str, str]] = []
        self.failing = failing or {}

    def __call__(self, name: str, container_id: str) -> str | None:
        self.killed.append((name, container_id))
        return self.failing.get(name)


# -- picking ----------------------------------------------------------------------------------


def test_pick_oldest_first_and_the_rest_pending() -> None:
    first = crr(name="b-first", created="2026-11-27T11:00:00Z")
    second = crr(name="a-second", created="2026-11-27T11:00:05Z")
    picked, pending = pick_crr([second, first])
    assert picked is first
    assert pending == [second]


def test_pick_prefers_recreating_and_only_unset_phases_go_pending() -> None:
    older = crr(name="older", created="2026-11-27T11:00:00Z", phase="Pending")
    busy = crr(name="busy", created="2026-11-27T11:00:09Z", phase="Recreating")
    fresh = crr(name="fresh", created="2026-11-27T11:00:10Z")
    picked, pending = pick_crr([older, fresh, busy])
    assert picked is busy
    assert pending == [fresh]


def test_pick_skips_finished_and_breaks_ties_by_name() -> None:
    done = crr(name="done", phase="Completed")
    done["status"]["completionTime"] = "2026-11-27T11:59:30Z"
    same_b, same_a = crr(name="b"), crr(name="a")
    picked, pending = pick_crr([done, same_b, same_a])
    assert picked is same_a
    assert pending == [same_b]
    assert pick_crr([done]) == (None, [])


# -- the runtime view -------------------------------------------------------------------------


def test_the_daemon_sees_the_newest_container_of_each_name() -> None:
    old = exited("a", OLD["a"])
    new = running("a", NEW["a"], restarts=1)
    assert newest_containers({"a": [new, old], "b": []}) == {"a": new}


@pytest.mark.parametrize(
    ("served", "usable", "chosen"),
    [
        ({"v1alpha1", "v1beta1"}, ("v1beta1",), "v1beta1"),
        ({"v1alpha1"}, ("v1beta1",), None),  # the real daemon: nothing to work with
        ({"v1alpha1"}, ("v1beta1", "v1alpha1"), "v1alpha1"),  # the opt-in
        ({"v1alpha1", "v1beta1"}, ("v1beta1", "v1alpha1"), "v1beta1"),
    ],
)
def test_the_crr_version_is_the_first_usable_one_served(
    served: set[str], usable: tuple[str, ...], chosen: str | None
) -> None:
    assert choose_crr_version(served, usable) == chosen


# -- container states -------------------------------------------------------------------------


def test_states_pending_before_the_kill() -> None:
    states = current_recreate_states(crr(("a", "b")), {"a": running("a", OLD["a"])}, NOW)
    assert states == [
        recreate_state("a", "Pending"),
        recreate_state("b", "Pending", message="not found container on Node"),
    ]


def test_states_recreating_until_the_manager_snapshot_shows_the_new_container() -> None:
    request = crr(states=[recreate_state("a", "Recreating", killed=True)], phase="Recreating")
    containers = {"a": running("a", NEW["a"], age=5, restarts=1)}
    assert current_recreate_states(request, containers, NOW) == [
        recreate_state("a", "Recreating", killed=True)
    ]
    request["status"]["containerStatusSnapshot"] = [synced("a", ready=False)]
    assert current_recreate_states(request, containers, NOW)[0]["phase"] == "Recreating"
    request["status"]["containerStatusSnapshot"] = [synced("a")]
    assert current_recreate_states(request, containers, NOW) == [
        recreate_state("a", "Succeeded", killed=True)
    ]


def test_states_respect_min_started_seconds() -> None:
    request = crr(snapshot=[synced("a")], minStartedSeconds=10)
    assert current_recreate_states(request, {"a": running("a", NEW["a"], age=9)}, NOW)[0] == (
        recreate_state("a", "Recreating")
    )
    assert current_recreate_states(request, {"a": running("a", NEW["a"], age=11)}, NOW)[0] == (
        recreate_state("a", "Succeeded")
    )


def test_states_read_the_v1alpha1_annotation_too() -> None:
    request = crr()
    request["metadata"]["annotations"] = {ANNOTATION_SYNC_STATUSES: json.dumps([synced("a")])}
    assert sync_container_statuses(request) == {"a": synced("a")}
    assert current_recreate_states(request, {"a": running("a", NEW["a"])}, NOW)[0]["phase"] == (
        "Succeeded"
    )


def test_states_exited_container_is_recreating_and_final_states_stick() -> None:
    gone = exited("a", OLD["a"])
    assert current_recreate_states(crr(), {"a": gone}, NOW) == [recreate_state("a", "Recreating")]
    failed = recreate_state("a", "Failed", message="kill container error: boom")
    request = crr(states=[failed])
    assert current_recreate_states(request, {"a": running("a", OLD["a"])}, NOW) == [failed]


def test_states_force_recreate_wants_a_kill_even_after_a_restart() -> None:
    restarted = {"a": running("a", NEW["a"], restarts=1)}
    assert current_recreate_states(crr(forceRecreate=True), restarted, NOW) == [
        recreate_state("a", "Pending")
    ]
    killed = crr(forceRecreate=True, states=[recreate_state("a", "Recreating", killed=True)])
    assert current_recreate_states(killed, restarted, NOW) == [
        recreate_state("a", "Recreating", killed=True)
    ]


# -- manage -------------------------------------------------------------------------------------


def test_manage_first_records_states_then_kills_one_container() -> None:
    containers = {"a": running("a", OLD["a"]), "b": running("b", OLD["b"])}
    request = crr(("a", "b"), phase="Recreating")
    step = manage_step(request, containers, NOW, no_kill)
    assert step == Step(
        patch_states=[recreate_state("a", "Pending"), recreate_state("b", "Pending")]
    )

    request["status"]["containerRecreateStates"] = step.patch_states
    kills = Kills()
    step = manage_step(request, containers, NOW, kills)
    assert kills.killed == [("a", OLD["a"])]
    assert step.patch_states == [
        recreate_state("a", "Recreating", killed=True),
        recreate_state("b", "Pending"),
    ]


def test_manage_unordered_kills_the_next_while_the_first_recreates() -> None:
    containers = {"a": running("a", NEW["a"], age=1, restarts=1), "b": running("b", OLD["b"])}
    request = crr(
        ("a", "b"),
        states=[recreate_state("a", "Recreating", killed=True), recreate_state("b", "Pending")],
    )
    kills = Kills()
    step = manage_step(request, containers, NOW, kills)
    assert kills.killed == [("b", OLD["b"])]
    assert step.patch_states is not None
    assert [s["phase"] for s in step.patch_states] == ["Recreating", "Recreating"]


def test_manage_ordered_waits_for_the_first_to_succeed() -> None:
    containers = {"a": running("a", NEW["a"], age=1, restarts=1), "b": running("b", OLD["b"])}
    states = [recreate_state("a", "Recreating", killed=True), recreate_state("b", "Pending")]
    request = crr(("a", "b"), states=states, orderedRecreate=True)
    assert manage_step(request, containers, NOW, no_kill) == Step()

    request["status"]["containerStatusSnapshot"] = [synced("a")]
    step = manage_step(request, containers, NOW, no_kill)
    assert step.patch_states == [
        recreate_state("a", "Succeeded", killed=True),
        recreate_state("b", "Pending"),
    ]
    request["status"]["containerRecreateStates"] = step.patch_states
    kills = Kills()
    manage_step(request, containers, NOW, kills)
    assert kills.killed == [("b", OLD["b"])]


def test_manage_completes_when_every_container_succeeded() -> None:
    states = [recreate_state("a", "Succeeded", killed=True)]
    request = crr(states=states, snapshot=[synced("a")])
    containers = {"a": running("a", NEW["a"], restarts=1)}
    assert manage_step(request, containers, NOW, no_kill) == Step(complete_message="")


def test_manage_kill_failure_with_fail_policy_stops_there() -> None:
    containers = {"a": running("a", OLD["a"]), "b": running("b", OLD["b"])}
    states = [recreate_state("a", "Pending"), recreate_state("b", "Pending")]
    request = crr(("a", "b"), states=states)
    kills = Kills({"a": "boom"})
    step = manage_step(request, containers, NOW, kills)
    assert kills.killed == [("a", OLD["a"])]
    assert step.patch_states == [
        recreate_state("a", "Failed", message="kill container error: boom"),
        recreate_state("b", "Pending"),
    ]
    request["status"]["containerRecreateStates"] = step.patch_states
    assert manage_step(request, containers, NOW, no_kill) == Step(complete_message="")


def test_manage_kill_failure_with_ignore_policy_carries_on() -> None:
    containers = {"a": running("a", OLD["a"]), "b": running("b", OLD["b"])}
    states = [recreate_state("a", "Pending"), recreate_state("b", "Pending")]
    request = crr(("a", "b"), states=states, failurePolicy="Ignore")
    kills = Kills({"a": "boom"})
    step = manage_step(request, containers, NOW, kills)
    assert kills.killed == [("a", OLD["a"]), ("b", OLD["b"])]
    assert step.patch_states == [
        recreate_state("a", "Failed", message="kill container error: boom"),
        recreate_state("b", "Recreating", killed=True),
    ]
    request["status"]["containerRecreateStates"] = [
        step.patch_states[0],
        recreate_state("b", "Succeeded", killed=True),
    ]
    assert manage_step(request, containers, NOW, no_kill) == Step(complete_message="")


def test_manage_requeues_for_min_started_seconds() -> None:
    request = crr(states=[recreate_state("a", "Recreating", killed=True)], minStartedSeconds=3)
    containers = {"a": running("a", NEW["a"], age=1, restarts=1)}
    assert manage_step(request, containers, NOW, no_kill) == Step(requeue_after=3.0)


@pytest.mark.parametrize(
    ("container_ids", "message"),
    [
        ([""], "no statusContext or empty containerID in a container"),
        (["abc"], 'failed to parse containerID abc in a container: invalid container ID: "abc"'),
        (["containerd://x", "docker://y"], "has different runtime types containerd, docker in Pod"),
        (["docker://x"], "not found runtime service for docker in daemon"),
    ],
)
def test_manage_completes_when_the_runtime_is_unusable(
    container_ids: list[str], message: str
) -> None:
    request = crr(("a", "b")[: len(container_ids)])
    for container, container_id in zip(request["spec"]["containers"], container_ids, strict=True):
        container["statusContext"]["containerID"] = container_id
    assert runtime_error(request) == message
    assert manage_step(request, {}, NOW, no_kill) == Step(
        complete_message=f"failed to find runtime service: {message}"
    )


# -- unready grace ------------------------------------------------------------------------------


def test_unready_grace_waits_for_the_condition_then_the_period() -> None:
    assert unready_grace_remaining(crr(), NOW) is None
    request = crr(unreadyGracePeriodSeconds=5)
    assert unready_grace_remaining(request, NOW) == math.inf
    request["status"]["conditions"] = [
        {"type": "PreRecreateGrace", "status": "True", "lastTransitionTime": "2026-11-27T11:59:58Z"}
    ]
    assert unready_grace_remaining(request, NOW) == pytest.approx(3.0)
    assert unready_grace_remaining(request, NOW + timedelta(seconds=4)) is None


def test_unready_grace_reads_the_v1alpha1_annotation() -> None:
    request = crr(unreadyGracePeriodSeconds=0)
    request["metadata"]["annotations"] = {ANNOTATION_UNREADY_ACQUIRED: "2026-11-27T11:59:59Z"}
    assert unready_grace_remaining(request, NOW) is None


# -- work queue ---------------------------------------------------------------------------------


def test_work_queue_dedups_and_orders_by_due_time() -> None:
    queue = WorkQueue()
    added = time.monotonic()
    queue.add("later", 0.2)
    queue.add("now")
    queue.add("now")
    queue.add("later", 5.0)  # an earlier due time already stands: due long before 4 s
    assert queue.get(4.0) == "now"
    assert queue.get(4.0) == "later"
    assert time.monotonic() - added >= 0.2  # not before it was due
    assert queue.get(0.05) is None


def test_work_queue_earlier_add_wins_and_close_wakes_getters() -> None:
    queue = WorkQueue()
    queue.add("key", 10.0)
    queue.add("key", 0.0)
    assert queue.get(0.5) == "key"
    assert queue.get(0.05) is None

    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get(10.0)))
    waiter.start()
    queue.close()
    waiter.join(2.0)
    assert got == [None]


def test_work_queue_hands_a_key_to_one_worker_at_a_time() -> None:
    queue = WorkQueue()
    queue.add("pod")
    assert queue.get(0.5) == "pod"
    queue.add("pod")  # an event while a worker syncs the pod
    assert queue.get(0.1) is None  # not to a second worker meanwhile
    queue.done("pod")
    assert queue.get(0.5) == "pod"  # but right after
    queue.done("pod")
    assert queue.get(0.05) is None


def test_rate_limiter_doubles_per_key_up_to_its_limit_and_forgets() -> None:
    limiter = RateLimiter(0.5, 3.0)
    assert [limiter.when("a") for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert limiter.when("b") == 0.5  # keys back off on their own
    assert limiter.failures("a") == 5
    limiter.forget("a")
    assert limiter.failures("a") == 0
    assert limiter.when("a") == 0.5
