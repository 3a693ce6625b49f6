"""The simulated node behaves as a real one during a restart, on the real control plane.

A pod's status is followed through a watch (every write the simulated kubelet makes is one event),
so the tests assert the sequence a user would see, and the timestamps the kubelet wrote, never how
long the test itself took. CRRs are admitted by kruise's webhook and finished with the help of the
real kruise-manager's container snapshot.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from harness.controlplane import ControlPlane
from harness.simulator import Simulator, running_simulator
from harness.simulator.objects import CRD_NAME, GROUP, PLURAL
from harness.simulator.plumbing import iter_lines, raw_json
from harness.simulator.runtime import (
    ANNOTATION_FAIL_KILL,
    ANNOTATION_STOP_EXIT_CODE,
    ANNOTATION_STOP_SECONDS,
    INJECTED_KILL_FAILURE,
)
from tests.support.pods import pod_is_running, pod_manifest, read_pod
from tests.support.waiting import wait_until

Obj = dict[str, Any]
VERSION = "v1beta1"  # what the simulated daemon works with, as the real one


def probe(delay: int, period: int = 1) -> Obj:
    return {"exec": {"command": ["true"]}, "initialDelaySeconds": delay, "periodSeconds": period}


def run_pod(
    kube: k8s.ApiClient,
    namespace: str,
    name: str,
    containers: tuple[str, ...] = ("app",),
    *,
    annotations: dict[str, str] | None = None,
    probes: Obj | None = None,
    **spec: Any,
) -> Obj:
    """Create a pod (every container with ``probes``) and wait until the kubelet runs it."""
    manifest = pod_manifest(name, containers)
    manifest["metadata"]["annotations"] = annotations or {}
    for container in manifest["spec"]["containers"]:
        container.update(probes or {})
    manifest["spec"].update(spec)
    k8s.CoreV1Api(kube).create_namespaced_pod(namespace, manifest)

    def running() -> Obj | None:
        pod = read_pod(kube, namespace, name)
        return pod if pod_is_running(pod) else None

    result: Obj = wait_until(f"pod {namespace}/{name} running", running)
    return result


def container(pod: Obj, name: str = "app") -> Obj:
    found: Obj = next(s for s in pod["status"]["containerStatuses"] if s["name"] == name)
    return found


def condition(pod: Obj, kind: str) -> Obj:
    found: Obj = next(c for c in pod["status"]["conditions"] if c["type"] == kind)
    return found


def is_ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def wait_ready(kube: k8s.ApiClient, namespace: str, name: str) -> Obj:
    def ready() -> Obj | None:
        pod = read_pod(kube, namespace, name)
        return pod if is_ready(pod) else None

    result: Obj = wait_until(f"pod {namespace}/{name} Ready", ready)
    return result


# kruise's webhook refusals that mean its informer has not caught up with the pod yet
LAGGING = ("no found Pod", "containerStatus in Pod Status", "pending Pod", "no containerID")


def restart(
    kube: k8s.ApiClient,
    namespace: str,
    pod: str,
    name: str = "restart",
    *,
    version: str = VERSION,
    deadline: int | None = None,
    **strategy: Any,
) -> None:
    """Create a CRR for the pod's ``app`` container (retried while kruise's webhook, which reads
    pods from its informer cache, does not know a fresh pod, or its running containers, yet)."""
    spec: Obj = {"podName": pod, "containers": [{"name": "app"}], "strategy": strategy}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    body = {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "ContainerRecreateRequest",
        "metadata": {"name": name},
        "spec": spec,
    }

    def admitted() -> bool:
        try:
            k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
                GROUP, version, namespace, PLURAL, body
            )
        except ApiException as error:
            if error.status == 400 and any(words in str(error.body) for words in LAGGING):
                return False
            raise
        return True

    wait_until(f"kruise's webhook to admit CRR {name}", admitted)


def get_crr(kube: k8s.ApiClient, namespace: str, name: str, version: str = VERSION) -> Obj:
    found: Obj = raw_json(
        k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, version, namespace, PLURAL, name, _preload_content=False
        )
    )
    return found


def wait_completed(kube: k8s.ApiClient, namespace: str, name: str = "restart") -> Obj:
    def done() -> Obj | None:
        crr = get_crr(kube, namespace, name)
        return crr if crr.get("status", {}).get("completionTime") else None

    result: Obj = wait_until(f"CRR {name} completed", done, timeout=60)
    return result


def recreate_state(crr: Obj, name: str = "app") -> Obj:
    found: Obj = next(s for s in crr["status"]["containerRecreateStates"] if s["name"] == name)
    return found


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@contextlib.contextmanager
def watching_pod(kube: k8s.ApiClient, namespace: str, name: str) -> Iterator[list[Obj]]:
    """Every version of the pod from now on, in order, collected while the block runs."""
    core = k8s.CoreV1Api(kube)
    selector = {"field_selector": f"metadata.name={name}"}
    listed = raw_json(core.list_namespaced_pod(namespace, **selector, _preload_content=False))
    seen: list[Obj] = list(listed["items"])
    response = core.list_namespaced_pod(
        namespace,
        **selector,
        watch=True,
        resource_version=listed["metadata"]["resourceVersion"],
        timeout_seconds=300,
        _preload_content=False,
    )

    def follow() -> None:
        with contextlib.suppress(Exception):  # ends when the block closes the stream
            for line in iter_lines(response):
                event = json.loads(line)
                if event["type"] in ("ADDED", "MODIFIED"):
                    seen.append(event["object"])

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        response.shutdown()
        reader.join(10)
        response.release_conn()


def distinct(values: list[Any]) -> list[Any]:
    """The values without consecutive repeats (other writers also update the pod)."""
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def test_a_restart_makes_the_pod_unready_until_its_probes_pass(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str
) -> None:
    probes = {"startupProbe": probe(1), "readinessProbe": probe(4)}
    run_pod(kube, namespace, "web", probes=probes)
    before = container(wait_ready(kube, namespace, "web"))

    with watching_pod(kube, namespace, "web") as seen:
        restart(kube, namespace, "web")
        crr = wait_completed(kube, namespace)
        wait_until("the watch to see the pod Ready", lambda: is_ready(seen[-1]))
        versions = list(seen)

    def observed(pod: Obj) -> tuple[str, str, bool, bool, str, str]:
        app = container(pod)
        state = next(iter(app["state"]))
        which = "old" if app["containerID"] == before["containerID"] else "new"
        ready, containers_ready = condition(pod, "Ready"), condition(pod, "ContainersReady")
        return (
            state,
            which,
            app["started"],
            app["ready"],
            containers_ready["status"],
            ready["status"],
        )

    assert distinct([observed(p) for p in versions]) == [
        ("running", "old", True, True, "True", "True"),
        ("terminated", "old", False, False, "False", "False"),  # the stop window
        ("running", "new", False, False, "False", "False"),  # the startup probe pending
        ("running", "new", True, False, "False", "False"),  # the readiness probe pending
        ("running", "new", True, True, "True", "True"),
    ]
    assert recreate_state(crr) == {"name": "app", "phase": "Succeeded", "isKilled": True}

    stopped = next(p for p in versions if "terminated" in container(p)["state"])
    terminated = container(stopped)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (143, "Error")  # SIGTERM, in time
    assert terminated["containerID"] == before["containerID"]
    went_unready = parse(condition(stopped, "Ready")["lastTransitionTime"])
    assert went_unready >= parse(terminated["finishedAt"])

    final = versions[-1]
    app = container(final)
    assert app["restartCount"] == 1
    assert app["lastState"]["terminated"] == terminated
    started = parse(app["state"]["running"]["startedAt"])
    assert started >= parse(terminated["finishedAt"])
    for kind in ("ContainersReady", "Ready"):
        came_back = parse(condition(final, kind)["lastTransitionTime"])
        assert came_back >= started + timedelta(
            seconds=probes["readinessProbe"]["initialDelaySeconds"]
        )
    # kruise only counts the restart as done once the new container is ready
    assert parse(crr["status"]["completionTime"]) >= parse(
        condition(final, "Ready")["lastTransitionTime"]
    )


@pytest.mark.parametrize(
    ("policy", "exit_code", "reason"),
    [("Never", "143", "Error"), ("OnFailure", "0", "Completed")],
)
def test_a_killed_container_the_policy_does_not_restart_stays_down(
    kube: k8s.ApiClient,
    simulator: Simulator,
    namespace: str,
    policy: str,
    exit_code: str,
    reason: str,
) -> None:
    run_pod(
        kube,
        namespace,
        "job",
        ("app", "sidecar"),
        restartPolicy=policy,
        annotations={ANNOTATION_STOP_EXIT_CODE: exit_code},
    )
    before = container(read_pod(kube, namespace, "job"))
    restart(kube, namespace, "job", deadline=3)
    crr = wait_completed(kube, namespace)
    # the daemon waits for a new container that never comes, until kruise gives up
    assert crr["status"]["message"] == "recreating has exceeded the activeDeadlineSeconds"
    assert recreate_state(crr)["phase"] == "Recreating"

    pod = read_pod(kube, namespace, "job")
    app = container(pod)
    assert app["containerID"] == before["containerID"] and app["restartCount"] == 0
    assert app["state"]["terminated"]["exitCode"] == int(exit_code)
    assert app["state"]["terminated"]["reason"] == reason
    assert not app["ready"]
    assert container(pod, "sidecar")["ready"]
    assert pod["status"]["phase"] == "Running"  # the sidecar still runs
    assert condition(pod, "Ready")["status"] == "False"


def test_sigkill_when_the_grace_period_runs_out(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str
) -> None:
    run_pod(
        kube,
        namespace,
        "stubborn",
        annotations={ANNOTATION_STOP_SECONDS: "60"},
        terminationGracePeriodSeconds=2,
    )
    restart(kube, namespace, "stubborn")
    crr = wait_completed(kube, namespace)
    assert recreate_state(crr)["phase"] == "Succeeded"
    assert crr["spec"]["strategy"]["terminationGracePeriodSeconds"] == 2  # from the pod
    last = container(read_pod(kube, namespace, "stubborn"))["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (137, "Error")
    assert parse(last["finishedAt"]) >= parse(crr["metadata"]["creationTimestamp"]) + timedelta(
        seconds=2
    )


def test_fail_kill_annotation_fails_the_kill_until_it_is_removed(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str
) -> None:
    run_pod(kube, namespace, "web", annotations={ANNOTATION_FAIL_KILL: "app"})
    restart(kube, namespace, "web", name="first")
    failed = wait_completed(kube, namespace, "first")
    assert recreate_state(failed) == {
        "name": "app",
        "phase": "Failed",
        "message": f"kill container error: {INJECTED_KILL_FAILURE}",
    }
    assert container(read_pod(kube, namespace, "web"))["restartCount"] == 0

    k8s.CoreV1Api(kube).patch_namespaced_pod(
        "web", namespace, {"metadata": {"annotations": {ANNOTATION_FAIL_KILL: None}}}
    )
    restart(kube, namespace, "web", name="second")
    assert recreate_state(wait_completed(kube, namespace, "second"))["phase"] == "Succeeded"
    assert container(read_pod(kube, namespace, "web"))["restartCount"] == 1


def test_a_second_restart_within_ten_minutes_waits_for_crash_loop_back_off(
    kube: k8s.ApiClient, simulator: Simulator, namespace: str
) -> None:
    run_pod(kube, namespace, "web")
    restart(kube, namespace, "web", name="first")
    wait_completed(kube, namespace, "first")

    with watching_pod(kube, namespace, "web") as seen:
        restart(kube, namespace, "web", name="second")
        crr = wait_completed(kube, namespace, "second")
        versions = list(seen)
    assert recreate_state(crr)["phase"] == "Succeeded"
    waiting = [
        container(p)["state"]["waiting"] for p in versions if "waiting" in container(p)["state"]
    ]
    assert waiting and waiting[0]["reason"] == "CrashLoopBackOff"
    assert waiting[0]["message"].startswith("back-off 10s restarting failed container=app pod=web_")
    app = container(versions[-1])
    assert app["restartCount"] == 2
    exited = parse(app["lastState"]["terminated"]["finishedAt"])
    assert parse(app["state"]["running"]["startedAt"]) >= exited + timedelta(seconds=10)


# -- the CRR versions the daemon works with ----------------------------------------------------


def served_versions(kube: k8s.ApiClient, served: Callable[[str], bool]) -> None:
    crds = k8s.ApiextensionsV1Api(kube)
    crd = raw_json(crds.read_custom_resource_definition(CRD_NAME, _preload_content=False))
    crd["spec"]["versions"] = [{**v, "served": served(v["name"])} for v in crd["spec"]["versions"]]
    crds.replace_custom_resource_definition(CRD_NAME, crd)


def discovery_serves(control_plane: ControlPlane, version: str) -> bool:
    status, body = control_plane.raw_get(f"/apis/{GROUP}/{version}")
    return status == 200 and any(r["name"] == PLURAL for r in json.loads(body)["resources"])


@pytest.fixture
def v1beta1_unserved(
    kube: k8s.ApiClient, control_plane: ControlPlane
) -> Iterator[Callable[[], None]]:
    """Stop serving v1beta1 of the CRR CRD; the callable (and the teardown) serves it again."""
    crds = k8s.ApiextensionsV1Api(kube)
    original = copy.deepcopy(
        raw_json(crds.read_custom_resource_definition(CRD_NAME, _preload_content=False))["spec"][
            "versions"
        ]
    )
    served = {v["name"] for v in original if v["served"]}
    assert served == {"v1alpha1", "v1beta1"}

    def restore() -> None:
        served_versions(kube, lambda name: name in served)
        wait_until("discovery to serve v1beta1", lambda: discovery_serves(control_plane, "v1beta1"))

    served_versions(kube, lambda name: name != "v1beta1")
    wait_until("discovery to drop v1beta1", lambda: not discovery_serves(control_plane, "v1beta1"))
    try:
        yield restore
    finally:
        restore()


def test_the_daemon_does_nothing_until_v1beta1_is_served(
    kube: k8s.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    v1beta1_unserved: Callable[[], None],
) -> None:
    node = "sim-crr-versions"
    with (
        control_plane.api_client() as api,
        running_simulator(api, node) as real,
        running_simulator(api, f"{node}-opt-in", crr_versions=("v1beta1", "v1alpha1")) as opted,
    ):
        wait_until("the daemons to look", lambda: real.served_crr_versions and opted.crr_version)
        assert real.served_crr_versions == {"v1alpha1"}
        assert real.crr_version is None  # as kruise v1.9.0's daemon: nothing to work with
        assert opted.crr_version == "v1alpha1"  # the deliberate opt-in

        run_pod(kube, namespace, "web", nodeName=node)
        restart(kube, namespace, "web", version="v1alpha1")
        assert not get_crr(kube, namespace, "restart", "v1alpha1").get("status")
        assert real.crr_version is None  # so it cannot have written anything yet

        v1beta1_unserved()  # serve it again: the daemon starts working
        wait_until("the daemon to find v1beta1", lambda: real.crr_version == "v1beta1", timeout=30)
        crr = wait_completed(kube, namespace)
        assert recreate_state(crr) == {"name": "app", "phase": "Succeeded", "isKilled": True}
    with contextlib.suppress(Exception):
        for name in (node, f"{node}-opt-in"):
            k8s.CoreV1Api(kube).delete_node(name)
