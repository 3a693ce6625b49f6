"""The simulated node's pure decisions: the container runtime, a container's life as the kubelet
runs it (restarts, CrashLoopBackOff, probes, the status it reports) and the pod status.
No cluster, no client mocks: plain dicts and the runtime's records, with the time given."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.simulator.kubelet import (
    image_id,
    kubelet_action,
    merge_conditions,
    pod_phase,
    pod_ready_condition,
    pod_status,
    status_differs,
)
from harness.simulator.lifecycle import (
    EXIT_NOTICE_SECONDS,
    CrashLoopBackOff,
    Restart,
    container_status,
    next_probe_change,
    ready_at,
    restart_decision,
    should_restart,
    started_at,
)
from harness.simulator.objects import format_time
from harness.simulator.runtime import (
    ANNOTATION_FAIL_KILL,
    ANNOTATION_STOP_EXIT_CODE,
    ANNOTATION_STOP_SECONDS,
    INJECTED_KILL_FAILURE,
    Container,
    ContainerRuntime,
    SigtermReaction,
    adopted_containers,
    grace_seconds,
    injected_kill_failure,
    sigterm_reaction,
    stop_outcome,
)

Obj = dict[str, Any]
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
ID = {n: f"containerd://{n * 64}" for n in "abcdef"}
A_MINUTE_AGO = NOW - timedelta(seconds=60)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def container(
    name: str = "app",
    container_id: str = ID["a"],
    *,
    started: datetime = A_MINUTE_AGO,
    restarts: int = 0,
    finished: datetime | None = None,
    exit_code: int | None = None,
) -> Container:
    return Container(
        container_id,
        "uid-1",
        name,
        "example.test/app:1.0",
        restarts,
        started,
        finished_at=finished,
        exit_code=exit_code,
    )


def annotated(**annotations: str) -> Obj:
    return {"metadata": {"annotations": annotations}}


# -- how a container stops ----------------------------------------------------------------------


def test_sigterm_reaction_from_the_pod_annotations_with_defaults() -> None:
    assert sigterm_reaction(None) == SigtermReaction(0.0, 143)
    assert sigterm_reaction(
        annotated(**{ANNOTATION_STOP_SECONDS: "2.5", ANNOTATION_STOP_EXIT_CODE: "0"})
    ) == SigtermReaction(2.5, 0)
    assert sigterm_reaction(
        annotated(**{ANNOTATION_STOP_SECONDS: "soon", ANNOTATION_STOP_EXIT_CODE: "-"})
    ) == SigtermReaction(0.0, 143)


def test_exit_code_143_within_the_grace_period_137_when_it_runs_out() -> None:
    assert stop_outcome(SigtermReaction(0.0, 143), 30) == (0.0, 143)
    assert stop_outcome(SigtermReaction(1.5, 143), 2) == (1.5, 143)
    assert stop_outcome(SigtermReaction(1.0, 0), 2) == (1.0, 0)
    assert stop_outcome(SigtermReaction(2.0, 143), 2) == (2.0, 137)  # SIGKILL at the deadline
    assert stop_outcome(SigtermReaction(60.0, 0), 5) == (5.0, 137)


def test_grace_period_from_the_crr_at_least_two_seconds() -> None:
    def crr(**strategy: Any) -> Obj:
        return {"spec": {"strategy": strategy}}

    assert grace_seconds(crr()) == 30
    assert grace_seconds(crr(terminationGracePeriodSeconds=5)) == 5
    assert grace_seconds(crr(terminationGracePeriodSeconds=0)) == 2
    assert grace_seconds({"spec": {}}) == 30


def test_fail_kill_annotation_names_containers() -> None:
    pod = annotated(**{ANNOTATION_FAIL_KILL: "app, sidecar"})
    assert injected_kill_failure(pod, "app") == INJECTED_KILL_FAILURE
    assert injected_kill_failure(pod, "sidecar") == INJECTED_KILL_FAILURE
    assert injected_kill_failure(pod, "other") is None
    assert injected_kill_failure(annotated(), "app") is None
    assert injected_kill_failure(None, "app") is None


# -- the runtime ----------------------------------------------------------------------------------


def test_stop_then_reap_exits_the_container_at_its_time() -> None:
    runtime = ContainerRuntime()
    started = runtime.start("uid-1", "app", "img", 0, NOW)
    stopping, error = runtime.stop(started.container_id, 5, SigtermReaction(1.0, 143), NOW)
    assert error is None and stopping is not None
    assert stopping.running and stopping.stopping_until == NOW + seconds(1)
    assert runtime.reap(NOW + seconds(0.5)) == set()
    assert runtime.reap(NOW + seconds(1)) == {"uid-1"}
    [gone] = runtime.containers("uid-1")["app"]
    assert not gone.running
    assert (gone.finished_at, gone.exit_code, gone.reason) == (NOW + seconds(1), 143, "Error")
    # stopping an exited container again succeeds and changes nothing (containerd's answer)
    assert runtime.stop(gone.container_id, 5, SigtermReaction(), NOW + seconds(2)) == (gone, None)
    assert runtime.next_exit() is None


def test_stop_of_a_container_the_runtime_does_not_have_fails_not_found() -> None:
    runtime = ContainerRuntime()
    started = runtime.start("uid-1", "app", "img", 0, NOW)
    runtime.forget("uid-1")  # the pod is gone
    stopping, error = runtime.stop(started.container_id, 5, SigtermReaction(), NOW)
    raw = started.container_id.removeprefix("containerd://")
    assert stopping is None
    assert error == (
        f'rpc error: code = NotFound desc = an error occurred when try to find container "{raw}":'
        " not found"
    )


def test_a_clean_exit_is_completed() -> None:
    runtime = ContainerRuntime()
    started = runtime.start("uid-1", "app", "img", 0, NOW)
    runtime.stop(started.container_id, 5, SigtermReaction(0.0, 0), NOW)
    runtime.reap(NOW)
    [done] = runtime.containers("uid-1")["app"]
    assert (done.exit_code, done.reason) == (0, "Completed")


def test_the_runtime_keeps_one_dead_container_per_name() -> None:
    runtime = ContainerRuntime()
    for restart in range(3):
        current = runtime.start("uid-1", "app", "img", restart, NOW + seconds(restart))
        runtime.stop(current.container_id, 2, SigtermReaction(), NOW + seconds(restart))
        runtime.reap(NOW + seconds(restart))
    last = runtime.start("uid-1", "app", "img", 3, NOW + seconds(3))
    instances = runtime.containers("uid-1")["app"]
    assert [c.restart_count for c in instances] == [3, 2]
    assert instances[0] == last


def test_adopted_containers_from_a_status_an_earlier_simulator_wrote() -> None:
    pod: Obj = {
        "metadata": {"uid": "uid-1"},
        "status": {
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "img",
                    "containerID": ID["b"],
                    "restartCount": 1,
                    "state": {"running": {"startedAt": "2026-11-27T11:00:00Z"}},
                    "lastState": {
                        "terminated": {
                            "containerID": ID["a"],
                            "exitCode": 143,
                            "startedAt": "2026-11-27T10:00:00Z",
                            "finishedAt": "2026-11-27T10:59:59Z",
                        }
                    },
                },
                {"name": "new", "state": {"waiting": {"reason": "ContainerCreating"}}},
            ]
        },
    }
    old, current = adopted_containers(pod)
    assert (old.container_id, old.running, old.exit_code, old.restart_count) == (
        ID["a"],
        False,
        143,
        0,
    )
    assert (current.container_id, current.running, current.restart_count) == (ID["b"], True, 1)
    assert current.started_at == datetime(2026, 11, 27, 11, tzinfo=UTC)
    runtime = ContainerRuntime()
    runtime.adopt(pod)
    assert runtime.knows("uid-1")
    assert runtime.containers("uid-1") == {"app": [current, old]}

    # a container waiting in CrashLoopBackOff: its newest instance is the exited one
    app = pod["status"]["containerStatuses"][0]
    app["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    [waiting] = adopted_containers(pod)
    assert (waiting.container_id, waiting.running, waiting.restart_count) == (ID["a"], False, 1)


# -- restarts and CrashLoopBackOff ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "exit_code", "restarts"),
    [
        ("Always", 143, True),
        ("Always", 0, True),
        ("OnFailure", 143, True),
        ("OnFailure", 0, False),
        ("Never", 143, False),
        ("Never", 0, False),
    ],
)
def test_restart_policy(policy: str, exit_code: int, restarts: bool) -> None:
    assert should_restart(policy, container(finished=NOW, exit_code=exit_code)) is restarts


def test_crash_loop_back_off_waits_from_the_second_restart_and_doubles() -> None:
    backoff = CrashLoopBackOff()
    key = "uid-1/app"
    first_exit = NOW
    assert backoff.remaining(key, first_exit, first_exit) == 0  # the first restart is free
    backoff.next(key, first_exit, first_exit)
    second_exit = NOW + seconds(30)
    assert backoff.remaining(key, second_exit, second_exit) == 10
    assert backoff.remaining(key, second_exit, second_exit + seconds(4)) == 6
    assert backoff.remaining(key, second_exit, second_exit + seconds(10)) == 0
    backoff.next(key, second_exit, second_exit + seconds(10))
    third_exit = second_exit + seconds(60)
    assert backoff.remaining(key, third_exit, third_exit) == 20
    for _ in range(10):
        backoff.next(key, third_exit, third_exit)
    assert backoff.current(key) == 300  # capped at five minutes
    # ten minutes without an exit and it starts over
    much_later = third_exit + seconds(601)
    assert backoff.remaining(key, much_later, much_later) == 0
    backoff.next(key, much_later, much_later)
    assert backoff.current(key) == 10
    backoff.forget_pod("uid-1")
    assert backoff.current(key) == 0


def pod_of(spec: Obj | None = None) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "uid-1"}, "spec": spec or {}}


def test_restart_decision_over_a_container_s_life() -> None:
    backoff, key, pod = CrashLoopBackOff(), "uid-1/app", pod_of()

    def decide(newest: Container | None, at: datetime, reported: Obj | None = None) -> Restart:
        return restart_decision("Always", newest, backoff, key, at, pod, reported)

    assert decide(None, NOW).start  # never started
    live = container()
    assert decide(live, NOW) == Restart()
    stopping = replace(live, stopping_until=NOW + seconds(3))
    assert decide(stopping, NOW) == Restart(wake_at=NOW + seconds(3))

    gone = replace(live, finished_at=NOW, exit_code=143)
    noticed = NOW + seconds(EXIT_NOTICE_SECONDS)
    reported = {"state": {"terminated": {"containerID": gone.container_id}}}
    assert decide(gone, NOW, reported) == Restart(wake_at=noticed)  # PLEG has not relisted
    # the exit must be in the pod's status before the container starts again
    not_yet = decide(gone, noticed, {"state": {"running": {}}, "containerID": gone.container_id})
    assert not not_yet.start and not_yet.wake_at is not None
    assert decide(gone, noticed, reported).start
    never = restart_decision("Never", gone, backoff, key, noticed, pod, reported)
    assert never == Restart()

    backoff.next(key, NOW, noticed)  # that restart happened; the next exit backs off
    again = replace(
        container("app", ID["b"], started=noticed, restarts=1), finished_at=NOW + seconds(5)
    )
    reported = {"state": {"terminated": {"containerID": ID["b"]}}}
    held = decide(again, NOW + seconds(6), reported)
    assert not held.start and held.wake_at == NOW + seconds(15)
    assert held.waiting == {
        "reason": "CrashLoopBackOff",
        "message": "back-off 10s restarting failed container=app pod=web_ns(uid-1)",
    }
    waiting = {"state": {"waiting": held.waiting}, "lastState": reported["state"]}
    assert decide(again, NOW + seconds(15), waiting).start


# -- probes ---------------------------------------------------------------------------------------


def probe(delay: int | None = None, period: int | None = None, **more: int) -> Obj:
    found: Obj = {"exec": {"command": ["true"]}, **more}
    if delay is not None:
        found["initialDelaySeconds"] = delay
    if period is not None:
        found["periodSeconds"] = period
    return found


START = NOW - seconds(100)


@pytest.mark.parametrize(
    ("spec", "started", "ready"),
    [
        ({}, 0, 0),  # no probes: started and ready at once
        ({"readinessProbe": probe()}, 0, 0),  # the first tick, at the start
        ({"readinessProbe": probe(3, 1)}, 0, 3),
        ({"readinessProbe": probe(3)}, 0, 10),  # the default period is ten seconds
        ({"readinessProbe": probe(5, 2)}, 0, 6),  # the first tick at least 5 s in
        ({"readinessProbe": probe(2, 1, successThreshold=3)}, 0, 4),
        ({"startupProbe": probe(4, 1)}, 4, 4),
        ({"startupProbe": probe(4, 1), "readinessProbe": probe(1, 3)}, 4, 6),
        ({"startupProbe": probe(1, 1), "readinessProbe": probe(2, 1)}, 1, 2),
    ],
)
def test_probes_pass_at_the_first_tick_past_their_delay(
    spec: Obj, started: float, ready: float
) -> None:
    instance = container(started=START)
    assert started_at(spec, instance) == START + seconds(started)
    assert ready_at(spec, instance) == START + seconds(ready)


def test_next_probe_change_is_the_next_of_started_and_ready() -> None:
    spec = {"startupProbe": probe(2, 1), "readinessProbe": probe(5, 1)}
    instance = container(started=START)
    assert next_probe_change(spec, instance, START) == START + seconds(2)
    assert next_probe_change(spec, instance, START + seconds(2)) == START + seconds(5)
    assert next_probe_change(spec, instance, START + seconds(5)) is None
    gone = replace(instance, finished_at=START + seconds(1), exit_code=143)
    assert next_probe_change(spec, gone, START) is None


# -- the container status -------------------------------------------------------------------------


def test_container_status_after_a_kill_terminated_then_running_not_ready_then_ready() -> None:
    spec = {"readinessProbe": probe(3, 1)}
    old = container(started=START, finished=NOW, exit_code=143)
    terminated = {
        "exitCode": 143,
        "reason": "Error",
        "startedAt": format_time(START),
        "finishedAt": format_time(NOW),
        "containerID": ID["a"],
    }
    status = container_status(spec, [old], "imageid", None, NOW)
    assert status["state"] == {"terminated": terminated}
    assert status["containerID"] == ID["a"] and status["restartCount"] == 0
    assert not status["ready"] and not status["started"] and status["lastState"] == {}

    new = container(container_id=ID["b"], started=NOW + seconds(1), restarts=1)
    status = container_status(spec, [new, old], "imageid", None, NOW + seconds(2), status)
    assert status["state"] == {"running": {"startedAt": format_time(NOW + seconds(1))}}
    assert status["lastState"] == {"terminated": terminated}
    assert status["containerID"] == ID["b"] and status["restartCount"] == 1
    assert status["started"] and not status["ready"]
    later = NOW + seconds(4)
    assert container_status(spec, [new, old], "imageid", None, later, status)["ready"]


def test_ready_only_after_the_status_showed_the_container_started() -> None:
    spec = {"readinessProbe": probe(0, 1)}
    new = container(container_id=ID["b"], started=NOW)
    first = container_status(spec, [new], "imageid", None, NOW + seconds(5), None)
    assert first["started"] and not first["ready"]  # the readiness probe has not run yet
    assert container_status(spec, [new], "imageid", None, NOW + seconds(5), first)["ready"]
    # without a readiness probe a started container is ready at once
    assert container_status({}, [new], "imageid", None, NOW, None)["ready"]


def test_container_status_in_crash_loop_back_off_is_waiting() -> None:
    old = container(started=START, finished=NOW, exit_code=137)
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 10s ..."}
    status = container_status({}, [old], "imageid", waiting, NOW)
    assert status["state"] == {"waiting": waiting}
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert not status["ready"]


# -- the pod --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "metadata", "phase", "action"),
    [
        ({}, {}, None, "bind"),
        ({"schedulingGates": [{"name": "g"}]}, {}, None, None),
        ({}, {"deletionTimestamp": "x"}, None, None),
        ({"nodeName": "other"}, {}, None, None),
        ({"nodeName": "node"}, {"deletionTimestamp": "x"}, "Running", "delete"),
        ({"nodeName": "node"}, {}, "Pending", "sync"),
        ({"nodeName": "node"}, {}, None, "sync"),
        ({"nodeName": "node"}, {}, "Running", "sync"),
        ({"nodeName": "node"}, {}, "Succeeded", None),
        ({"nodeName": "node"}, {}, "Failed", None),
    ],
)
def test_kubelet_action(spec: Obj, metadata: Obj, phase: str | None, action: str | None) -> None:
    pod = {"metadata": metadata, "spec": spec, "status": {"phase": phase} if phase else {}}
    assert kubelet_action(pod, "node") == action


def running_state() -> Obj:
    return {"state": {"running": {}}}


def ended(code: int, *, waiting: bool = False) -> Obj:
    if waiting:
        return {"state": {"waiting": {}}, "lastState": {"terminated": {"exitCode": code}}}
    return {"state": {"terminated": {"exitCode": code}}}


@pytest.mark.parametrize(
    ("policy", "states", "phase"),
    [
        ("Always", [running_state(), ended(143)], "Running"),
        ("Always", [ended(143), ended(0)], "Running"),
        ("Always", [ended(143, waiting=True), ended(0)], "Running"),
        ("Never", [running_state(), ended(143)], "Running"),
        ("Never", [ended(143), ended(0)], "Failed"),
        ("Never", [ended(0), ended(0)], "Succeeded"),
        ("OnFailure", [ended(0), ended(0)], "Succeeded"),
        ("OnFailure", [ended(143), ended(0)], "Running"),
        ("Always", [running_state(), {"state": {"waiting": {}}}], "Pending"),
        ("Always", [running_state()], "Pending"),  # a container with no status yet
    ],
)
def test_pod_phase(policy: str, states: list[Obj], phase: str) -> None:
    spec = {"restartPolicy": policy, "containers": [{"name": "a"}, {"name": "b"}]}
    statuses = [{"name": name, **state} for name, state in zip("ab", states, strict=False)]
    assert pod_phase(spec, statuses) == phase


def two_containers(**more: Any) -> Obj:
    return {
        "metadata": {"uid": "uid-1", "name": "web", "namespace": "ns"},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox:1"}],
            "containers": [
                {"name": "b", "image": "example.test/b:1.0"},
                {"name": "a", "image": "example.test/a:1.0"},
            ],
            **more,
        },
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }


def test_pod_status_of_a_new_pod() -> None:
    pod = two_containers()
    runtime = {n: [container(n, ID[n], started=NOW)] for n in "ab"}
    status = pod_status(pod, runtime, {}, "10.244.0.7", NOW)
    assert status["phase"] == "Running" and status["podIP"] == "10.244.0.7"
    assert status["startTime"] == format_time(NOW)
    assert [c["name"] for c in status["containerStatuses"]] == ["a", "b"]  # sorted by name
    for found in status["containerStatuses"]:
        assert found["ready"] and found["started"] and found["restartCount"] == 0
    assert status["containerStatuses"][0]["imageID"] == image_id("example.test/app:1.0")
    assert image_id("example.test/a:1.0").startswith("example.test/a@sha256:")
    init = status["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }


def test_pod_status_unready_while_a_container_restarts_and_ready_again() -> None:
    pod = two_containers()
    runtime = {n: [container(n, ID[n], started=NOW - seconds(60))] for n in "ab"}
    pod["status"] = pod_status(pod, runtime, {}, "10.244.0.7", NOW - seconds(60))

    runtime["a"] = [replace(runtime["a"][0], finished_at=NOW, exit_code=143)]
    down = pod_status(pod, runtime, {}, "10.244.0.7", NOW)
    assert status_differs(pod["status"], down)
    conditions = {c["type"]: c for c in down["conditions"]}
    for kind in ("ContainersReady", "Ready"):
        assert conditions[kind]["status"] == "False"
        assert conditions[kind]["reason"] == "ContainersNotReady"
        assert conditions[kind]["message"] == "containers with unready status: [a]"
        assert conditions[kind]["lastTransitionTime"] == format_time(NOW)
    assert down["phase"] == "Running"
    assert down["startTime"] == format_time(NOW - seconds(60))  # kept from the first start

    pod["status"] = down
    runtime["a"].insert(0, container("a", ID["c"], started=NOW + seconds(1), restarts=1))
    up = pod_status(pod, runtime, {}, "10.244.0.7", NOW + seconds(2))
    conditions = {c["type"]: c for c in up["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["lastTransitionTime"] == format_time(NOW + seconds(2))
    pod["status"] = up
    assert not status_differs(up, pod_status(pod, runtime, {}, "10.244.0.7", NOW + seconds(9)))


def test_pod_status_of_a_pod_whose_containers_all_ended_under_never() -> None:
    pod = two_containers(restartPolicy="Never")
    runtime = {n: [container(n, ID[n], finished=NOW, exit_code=143)] for n in "ab"}
    status = pod_status(pod, runtime, {}, "10.244.0.7", NOW)
    assert status["phase"] == "Failed"
    conditions = {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}
    assert conditions["Ready"] == ("False", "PodFailed")
    assert conditions["ContainersReady"] == ("False", "PodFailed")


def test_readiness_gates_hold_ready_back() -> None:
    spec = {"containers": [{"name": "a"}], "readinessGates": [{"conditionType": "KruisePodReady"}]}
    statuses = [{"name": "a", "ready": True}]
    missing = pod_ready_condition(spec, [], statuses)
    assert missing == {
        "type": "Ready",
        "status": "False",
        "reason": "ReadinessGatesNotReady",
        "message": 'corresponding condition of pod readiness gate "KruisePodReady" does not exist.',
    }
    gate_false = [{"type": "KruisePodReady", "status": "False"}]
    assert pod_ready_condition(spec, gate_false, statuses)["message"] == (
        'the status of pod readiness gate "KruisePodReady" is not "True", but False'
    )
    gate_true = [{"type": "KruisePodReady", "status": "True"}]
    assert pod_ready_condition(spec, gate_true, statuses) == {"type": "Ready", "status": "True"}


def test_a_readiness_gate_turning_true_changes_the_status_to_write() -> None:
    pod = two_containers(readinessGates=[{"conditionType": "KruisePodReady"}])
    runtime = {n: [container(n, ID[n], started=NOW)] for n in "ab"}
    pod["status"] = pod_status(pod, runtime, {}, "10.244.0.2", NOW)
    assert not status_differs(pod["status"], pod_status(pod, runtime, {}, "10.244.0.2", NOW))
    pod["status"]["conditions"].append({"type": "KruisePodReady", "status": "True"})
    later = NOW + seconds(3)
    update = pod_status(pod, runtime, {}, "10.244.0.2", later)
    assert status_differs(pod["status"], update)
    ready = next(c for c in update["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == format_time(later)
    assert {"type": "KruisePodReady", "status": "True"} in [
        {k: c[k] for k in ("type", "status")} for c in update["conditions"]
    ]


def test_merge_conditions_keeps_transition_time_when_status_holds() -> None:
    existing = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Custom", "status": "True"},
    ]
    merged = merge_conditions(
        existing, [{"type": "Ready", "status": "True"}, {"type": "New", "status": "False"}], NOW
    )
    assert [c["type"] for c in merged] == ["Ready", "Custom", "New"]
    assert merged[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert merged[2]["lastTransitionTime"] == format_time(NOW)
