"""The simulated kubelet and kruise-daemon against the real apiserver and kruise-manager.

Every CRR here is admitted by kruise's own webhook and finished with the help of kruise-manager's
CRR controller (its container snapshot is what lets a container state reach Succeeded).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from harness.simulator.objects import GROUP, PLURAL
from harness.simulator.plumbing import raw_json
from tests.support.pods import MakePod, read_pod
from tests.support.waiting import wait_until

Obj = dict[str, Any]
CONTAINER_ID = re.compile(r"^containerd://[0-9a-f]{64}$")


def crr_version(simulator: Simulator) -> str:
    version: str = wait_until("CRR version discovery", lambda: simulator.crr_version, timeout=30)
    return version


def create_crr(
    kube: k8s.ApiClient,
    simulator: Simulator,
    namespace: str,
    name: str,
    pod: str,
    containers: list[str],
    deadline: int | None = None,
    **strategy: Any,
) -> Obj:
    version = crr_version(simulator)
    body: Obj = {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "ContainerRecreateRequest",
        "metadata": {"name": name},
        "spec": {
            "podName": pod,
            "containers": [{"name": c} for c in containers],
            "strategy": strategy,
        },
    }
    if deadline is not None:
        body["spec"]["activeDeadlineSeconds"] = deadline
    created: Obj = raw_json(
        k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
            GROUP, version, namespace, PLURAL, body, _preload_content=False
        )
    )
    return created


def get_crr(kube: k8s.ApiClient, simulator: Simulator, namespace: str, name: str) -> Obj:
    obj: Obj = raw_json(
        k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, crr_version(simulator), namespace, PLURAL, name, _preload_content=False
        )
    )
    return obj


def wait_completed(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, name: str, timeout: float = 60
) -> Obj:
    def done() -> Obj | None:
        crr = get_crr(kube, simulator, namespace, name)
        return crr if crr.get("status", {}).get("completionTime") else None

    result: Obj = wait_until(f"CRR {name} completed", done, timeout=timeout)
    return result


def writes_until_completed(
    kube: k8s.ApiClient, simulator: Simulator, created: Obj, timeout: int = 60
) -> list[Obj]:
    """Every version of the CRR written after ``created``, through a watch (none is missed,
    as polling could), until the one that completes it."""
    meta = created["metadata"]
    writes: list[Obj] = []
    stream = watch.Watch().stream(
        k8s.CustomObjectsApi(kube).list_namespaced_custom_object,
        GROUP,
        crr_version(simulator),
        meta["namespace"],
        PLURAL,
        field_selector=f"metadata.name={meta['name']}",
        resource_version=meta["resourceVersion"],
        timeout_seconds=timeout,
    )
    for event in stream:
        writes.append(event["object"])
        if event["object"].get("status", {}).get("completionTime"):
            return writes
    raise AssertionError(f"CRR {meta['name']} not completed within {timeout}s: {writes[-1:]}")


def states(crr: Obj) -> dict[str, Obj]:
    return {s["name"]: s for s in crr.get("status", {}).get("containerRecreateStates") or []}


def container_status(pod: Obj, name: str) -> Obj:
    found: Obj = next(s for s in pod["status"]["containerStatuses"] if s["name"] == name)
    return found


def condition(obj: Obj, kind: str) -> Obj | None:
    return next(
        (c for c in obj.get("status", {}).get("conditions") or [] if c["type"] == kind), None
    )


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_pod_is_bound_run_and_the_node_is_ready(
    control_plane: ControlPlane, kube: k8s.ApiClient, make_pod: MakePod
) -> None:
    pod = make_pod("web", ["app", "sidecar"])
    assert pod["spec"]["nodeName"] == control_plane.node_name
    assert pod["status"]["podIP"].startswith("10.244.")
    assert pod["status"]["hostIP"] == "127.0.0.1"
    for name in ("app", "sidecar"):
        status = container_status(pod, name)
        assert CONTAINER_ID.match(status["containerID"])
        assert status["ready"] and status["started"] and status["restartCount"] == 0
        assert "running" in status["state"]
    ready = condition(pod, "Ready")
    assert ready is not None and ready["status"] == "True"

    node: Obj = raw_json(
        k8s.CoreV1Api(kube).read_node(control_plane.node_name, _preload_content=False)
    )
    node_ready = condition(node, "Ready")
    assert node_ready is not None and node_ready["status"] == "True"


def test_readiness_gate_waits_for_kruise(kube: k8s.ApiClient, make_pod: MakePod) -> None:
    pod = make_pod("gated", readiness_gate=True)

    def ready() -> Obj | None:
        current = read_pod(kube, pod["metadata"]["namespace"], "gated")
        found = condition(current, "Ready")
        return current if found is not None and found["status"] == "True" else None

    current = wait_until("kruise-manager to set KruisePodReady and the pod to be Ready", ready)
    gate = condition(current, "KruisePodReady")
    assert gate is not None and gate["status"] == "True"


def test_crr_recreates_the_container(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    before = container_status(make_pod("web"), "app")
    created = create_crr(kube, simulator, namespace, "restart-app", "web", ["app"])
    assert created["spec"]["containers"][0]["statusContext"]["containerID"] == before["containerID"]

    crr = wait_completed(kube, simulator, namespace, "restart-app")
    assert crr["status"]["phase"] == "Completed"
    assert not crr["status"].get("message")
    assert states(crr) == {"app": {"name": "app", "phase": "Succeeded", "isKilled": True}}

    after = container_status(read_pod(kube, namespace, "web"), "app")
    assert after["restartCount"] == 1
    assert (
        CONTAINER_ID.match(after["containerID"]) and after["containerID"] != before["containerID"]
    )
    assert after["lastState"]["terminated"]["containerID"] == before["containerID"]


def test_ordered_recreate_goes_one_container_at_a_time(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web", ["first", "second"])
    created = create_crr(
        kube,
        simulator,
        namespace,
        "ordered",
        "web",
        ["first", "second"],
        orderedRecreate=True,
        minStartedSeconds=2,
    )
    seen = [states(crr) for crr in writes_until_completed(kube, simulator, created)]
    final = seen[-1]
    assert {s["phase"] for s in final.values()} == {"Succeeded"}
    killed_second = [observed for observed in seen if observed.get("second", {}).get("isKilled")]
    assert killed_second, seen  # the second was killed at some write ...
    # ... and never before the first had succeeded
    assert all(observed["first"]["phase"] == "Succeeded" for observed in killed_second), seen
    assert any(
        s.get("first", {}).get("phase") == "Recreating" and not s["second"].get("isKilled")
        for s in seen
        if "second" in s
    ), seen

    pod = read_pod(kube, namespace, "web")
    first, second = container_status(pod, "first"), container_status(pod, "second")
    assert first["restartCount"] == second["restartCount"] == 1
    started_first = parse(first["state"]["running"]["startedAt"])
    assert parse(second["lastState"]["terminated"]["finishedAt"]) >= started_first + timedelta(
        seconds=2
    )


@pytest.mark.parametrize(
    ("policy", "fine_state", "fine_restarts"),
    [
        ("Fail", {"name": "fine", "phase": "Pending"}, 0),
        ("Ignore", {"name": "fine", "phase": "Succeeded", "isKilled": True}, 1),
    ],
)
def test_failed_kill_and_the_failure_policy(
    kube: k8s.ApiClient,
    simulator: Simulator,
    namespace: str,
    make_pod: MakePod,
    policy: str,
    fine_state: Obj,
    fine_restarts: int,
) -> None:
    make_pod("web", ["broken", "fine"])
    simulator.fail_kill(namespace, "web", "broken", "container is stuck")
    create_crr(kube, simulator, namespace, "crr", "web", ["broken", "fine"], failurePolicy=policy)

    crr = wait_completed(kube, simulator, namespace, "crr")
    assert crr["status"]["phase"] == "Completed"
    assert not crr["status"].get("message")
    result = states(crr)
    assert result["broken"] == {
        "name": "broken",
        "phase": "Failed",
        "message": "kill container error: container is stuck",
    }
    pod = read_pod(kube, namespace, "web")
    assert container_status(pod, "broken")["restartCount"] == 0
    assert result["fine"] == fine_state
    assert container_status(pod, "fine")["restartCount"] == fine_restarts


def test_crrs_on_one_pod_go_one_at_a_time(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web", ["app", "sidecar"])
    simulator.daemon_down = True  # all three see the original containers when admitted
    create_crr(kube, simulator, namespace, "a-first", "web", ["app"], minStartedSeconds=3)
    create_crr(kube, simulator, namespace, "b-second", "web", ["sidecar"])
    create_crr(kube, simulator, namespace, "c-third", "web", ["app"])
    simulator.daemon_down = False

    def others_pending_while_first_runs() -> bool:
        first, *others = (
            get_crr(kube, simulator, namespace, name) for name in ("a-first", "b-second", "c-third")
        )
        return not first.get("status", {}).get("completionTime") and all(
            other.get("status", {}).get("phase") == "Pending" for other in others
        )

    wait_until("the later CRRs Pending while a-first recreates", others_pending_while_first_runs)
    first, second, third = (
        wait_completed(kube, simulator, namespace, name)
        for name in ("a-first", "b-second", "c-third")
    )
    assert states(first)["app"] == {"name": "app", "phase": "Succeeded", "isKilled": True}
    assert states(second)["sidecar"] == {"name": "sidecar", "phase": "Succeeded", "isKilled": True}
    # the daemon counts a container restarted since the CRR was admitted as recreated: no kill
    assert states(third)["app"] == {"name": "app", "phase": "Succeeded"}
    first_done = parse(first["status"]["completionTime"])
    assert parse(second["status"]["completionTime"]) >= first_done
    assert parse(third["status"]["completionTime"]) >= parse(second["status"]["completionTime"])

    pod = read_pod(kube, namespace, "web")
    assert container_status(pod, "app")["restartCount"] == 1
    sidecar = container_status(pod, "sidecar")
    assert sidecar["restartCount"] == 1
    assert parse(sidecar["lastState"]["terminated"]["finishedAt"]) >= first_done


def test_daemon_down_writes_nothing_until_it_is_back(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web")
    make_pod("witness")
    simulator.daemon_down = True
    create_crr(kube, simulator, namespace, "crr", "web", ["app"])
    # a witness whose 3 s deadline kruise-manager enforces: when it ends, the daemon has had
    # those seconds to act on either CRR and wrote nothing to them
    create_crr(kube, simulator, namespace, "witness", "witness", ["app"], deadline=3)
    witness = wait_completed(kube, simulator, namespace, "witness")
    assert witness["status"]["message"] == "recreating has exceeded the activeDeadlineSeconds"
    assert "containerRecreateStates" not in witness["status"]
    assert "phase" not in (get_crr(kube, simulator, namespace, "crr").get("status") or {})
    simulator.daemon_down = False
    crr = wait_completed(kube, simulator, namespace, "crr")
    assert states(crr)["app"]["phase"] == "Succeeded"


def test_deleted_pod_is_removed_and_its_crr_ends_as_pod_gone(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web")
    simulator.daemon_down = True
    create_crr(kube, simulator, namespace, "crr", "web", ["app"])
    k8s.CoreV1Api(kube).delete_namespaced_pod("web", namespace)  # graceful: the kubelet finishes it

    def gone() -> bool:
        try:
            read_pod(kube, namespace, "web")
        except ApiException as error:
            return bool(error.status == 404)
        return False

    wait_until("the kubelet to delete the terminating pod", gone)
    crr = wait_completed(kube, simulator, namespace, "crr")
    assert crr["status"]["message"] == "pod has gone"


def test_slow_daemon_still_finishes(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web")
    simulator.slow_seconds = 1.0
    started = time.monotonic()
    create_crr(kube, simulator, namespace, "crr", "web", ["app"])
    crr = wait_completed(kube, simulator, namespace, "crr")
    assert states(crr)["app"]["phase"] == "Succeeded"
    # at least: Recreating, Pending states, the kill, Recreating state, Succeeded, Completed
    assert time.monotonic() - started >= 5.0


def test_unready_grace_period_with_the_kruise_readiness_gate(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str, make_pod: MakePod
) -> None:
    make_pod("gated", readiness_gate=True)

    def pod_ready() -> bool:
        found = condition(read_pod(kube, namespace, "gated"), "Ready")
        return found is not None and found["status"] == "True"

    wait_until("gated pod Ready", pod_ready)
    create_crr(kube, simulator, namespace, "crr", "gated", ["app"], unreadyGracePeriodSeconds=2)
    wait_until("pod made unready for the grace period", lambda: not pod_ready())
    crr = wait_completed(kube, simulator, namespace, "crr")
    assert states(crr)["app"]["phase"] == "Succeeded"

    grace = condition(crr, "PreRecreateGrace")  # the daemon works with v1beta1 only
    assert grace is not None and grace["status"] == "True"
    killed = container_status(read_pod(kube, namespace, "gated"), "app")
    finished = parse(killed["lastState"]["terminated"]["finishedAt"])
    assert finished >= parse(grace["lastTransitionTime"]) + timedelta(seconds=2)
    wait_until("pod Ready again", pod_ready)


def test_stop_ends_every_thread_and_a_missing_node_is_created(control_plane: ControlPlane) -> None:
    api = control_plane.api_client()
    core = k8s.CoreV1Api(api)
    other = Simulator(api, "sim-stop-test")
    before = set(threading.enumerate())
    try:
        other.start()

        def node_ready() -> bool:
            try:
                node = raw_json(core.read_node("sim-stop-test", _preload_content=False))
            except ApiException:
                return False
            found = condition(node, "Ready")
            return found is not None and found["status"] == "True"

        wait_until("the simulator to create and report its node", node_ready)
        wait_until("the CRR watch to run", lambda: other.crr_version)
        other.stop()  # joins its threads, each for a bounded time
        assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []
    finally:
        other.stop()
        with contextlib.suppress(ApiException):
            core.delete_node("sim-stop-test")
        api.close()


def test_survives_an_apiserver_restart(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    simulator: Simulator,
    namespace: str,
    make_pod: MakePod,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_pod("before")
    caplog.set_level(logging.WARNING, logger="harness.simulator")
    control_plane.stop_apiserver()
    try:
        wait_until(
            "the simulator to lose the apiserver",
            lambda: any("retrying with backoff" in r.getMessage() for r in caplog.records),
        )
    finally:
        control_plane.start_apiserver()
    make_pod("after")

    def admitted() -> bool:  # kruise-manager's caches catch up with the restart first
        try:
            create_crr(kube, simulator, namespace, "crr", "after", ["app"])
        except ApiException as error:
            if error.status == 400 and "no found Pod" in str(error.body):
                return False
            raise
        return True

    wait_until("kruise's webhook to admit the CRR", admitted, timeout=60)
    crr = wait_completed(kube, simulator, namespace, "crr")
    assert states(crr)["app"]["phase"] == "Succeeded"
