"""A simulated kubelet and kruise-daemon for the one Node of the local control plane.

There is no container runtime on the test machine, so nothing would ever run a pod or restart a
container. This module plays the two node agents that would, through the apiserver only:

* **kubelet** - binds unscheduled pods to our node (there is no scheduler either), reports pods on
  the node as Running with ready containers that have ``containerd://`` IDs, recomputes the Ready
  condition from ``spec.readinessGates`` as the kubelet does, deletes terminating pods with grace 0
  and keeps the Node object Ready.
* **kruise-daemon** - the ContainerRecreateRequest (CRR) half of ``pkg/daemon/containerrecreate``
  in OpenKruise v1.9.0: one CRR per pod at a time (the others ``Pending``), ``Recreating``,
  per-container states, kills, and ``Completed``. A "kill" restarts the container in the pod's
  status the way the kubelet would report it (new container ID, ``restartCount`` + 1,
  ``lastState.terminated``). Success is only declared from the container snapshot that the *real*
  kruise-manager writes into the CRR (``status.containerStatusSnapshot`` in v1beta1, the
  ``crr.apps.kruise.io/sync-container-statuses`` annotation in v1alpha1), never from the pod.

The decisions are pure functions over plain dicts (``pick_crr``, ``current_recreate_states``,
``manage_step``, ``running_pod_status``, ...), mirroring the Go functions they are named after, so
``tests/test_simulator_unit.py`` can check them without a cluster. :class:`Simulator` wires them
to list/watch loops and a delaying work queue per half.

Deliberate differences from the real agents (each is repeated next to its code):

* no processes: a kill is one pod-status write; the new container is running and ready at once
  (no exited-but-not-yet-restarted window, no readiness probes, no CrashLoopBackOff);
* no preStop hooks and no termination grace period: ``terminationGracePeriodSeconds`` and
  ``preStop`` in the CRR are accepted and ignored;
* no Events are recorded (the daemon records ``Killing`` events on the pod);
* each sync lists the pod's CRRs and reads the pod fresh from the apiserver (the "runtime" is the
  pod's status) instead of using the informer cache plus resourceVersion expectations; the watch
  only says which pods to sync;
* two guards the daemon lacks: a CRR that is already completed is never written again, and a CRR
  is only set ``Pending`` when its fresh phase is still empty;
* CRRs created in the same second are ordered by name (the daemon's sort is not stable there);
* one worker instead of 32, and a poll of every active CRR each second on top of watch events;
* only the ``containerd`` runtime exists on the node.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GROUP = "apps.kruise.io"
PLURAL = "containerrecreaterequests"
CRD_NAME = f"{PLURAL}.{GROUP}"

LABEL_POD_UID = "crr.apps.kruise.io/pod-uid"
LABEL_NODE_NAME = "crr.apps.kruise.io/node-name"
LABEL_ACTIVE = "crr.apps.kruise.io/active"
ANNOTATION_SYNC_STATUSES = "crr.apps.kruise.io/sync-container-statuses"
ANNOTATION_UNREADY_ACQUIRED = "crr.apps.kruise.io/unready-acquired"
CONDITION_PRE_RECREATE_GRACE = "PreRecreateGrace"

PENDING = "Pending"
RECREATING = "Recreating"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
COMPLETED = "Completed"

RUNTIME = "containerd"
HOST_IP = "127.0.0.1"
KILL_EXIT_CODE = 137
DEFAULT_KILL_FAILURE = "rpc error: code = Unknown desc = simulated failure to stop container"

WATCH_TIMEOUT_SECONDS = 30
REQUEST_TIMEOUT = (5.0, 15.0)
DAEMON_POLL_SECONDS = 1.0
NODE_HEARTBEAT_SECONDS = 20.0
CONFLICT_RETRIES = 5


# --------------------------------------------------------------------------------------------
# Small helpers over plain dicts
# --------------------------------------------------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 at second precision, as ``metav1.Time`` serialises."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def new_container_id() -> str:
    return f"{RUNTIME}://{secrets.token_hex(32)}"


def meta(obj: Obj) -> Obj:
    result: Obj = obj.get("metadata") or {}
    return result


def status_of(obj: Obj) -> Obj:
    result: Obj = obj.get("status") or {}
    return result


def strategy_of(crr: Obj) -> Obj:
    result: Obj = (crr.get("spec") or {}).get("strategy") or {}
    return result


def crr_phase(crr: Obj) -> str:
    return str(status_of(crr).get("phase") or "")


def is_finished(crr: Obj) -> bool:
    return bool(meta(crr).get("deletionTimestamp") or status_of(crr).get("completionTime"))


def crr_group_key(crr: Obj) -> str:
    """The daemon's queue key: ``namespace/spec.podName`` (its index is by pod *name*)."""
    return f"{meta(crr).get('namespace', '')}/{(crr.get('spec') or {}).get('podName', '')}"


# --------------------------------------------------------------------------------------------
# kruise-daemon decisions (pkg/daemon/containerrecreate), pure
# --------------------------------------------------------------------------------------------

_PHASE_WEIGHT = {COMPLETED: 1, RECREATING: 2, PENDING: 3}


def crr_sort_key(crr: Obj) -> tuple[int, datetime, str]:
    """crrListByPhaseAndCreated: Recreating before Pending before new, then oldest first.

    Difference: ties (creationTimestamp has second precision) are broken by name.
    """
    created = parse_time(meta(crr).get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)
    return (_PHASE_WEIGHT.get(crr_phase(crr), 4), created, str(meta(crr).get("name", "")))


def pick_crr(crrs: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """pickRecreateRequest: the CRR to work on, and the others to mark Pending (phase unset)."""
    picked: Obj | None = None
    to_pending: list[Obj] = []
    for crr in sorted(crrs, key=crr_sort_key):
        if is_finished(crr):
            continue
        if picked is None:
            picked = crr
        elif crr_phase(crr) == "":
            to_pending.append(crr)
    return picked, to_pending


@dataclass(frozen=True)
class RuntimeContainer:
    """The runtime's newest container of a name (kubecontainer.Status, as far as we need it)."""

    name: str
    container_id: str
    running: bool
    started_at: datetime | None
    restart_count: int


def runtime_containers(pod: Obj | None, pod_uid: str) -> dict[str, RuntimeContainer]:
    """The runtime's view of a pod, derived from the pod status our kubelet half writes.

    A pod that is gone or has another UID has no containers on the node (as GetPodStatus by UID).
    """
    if pod is None or meta(pod).get("uid") != pod_uid:
        return {}
    found: dict[str, RuntimeContainer] = {}
    for cs in status_of(pod).get("containerStatuses") or []:
        state = cs.get("state") or {}
        running = state.get("running")
        terminated = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if running is not None and cs.get("containerID"):
            container_id, is_running = str(cs["containerID"]), True
            started = parse_time(running.get("startedAt"))
        elif terminated and terminated.get("containerID"):
            container_id, is_running = str(terminated["containerID"]), False
            started = parse_time(terminated.get("startedAt"))
        else:
            continue  # waiting, never created: nothing on the node
        found[cs["name"]] = RuntimeContainer(
            name=cs["name"],
            container_id=container_id,
            running=is_running,
            started_at=started,
            restart_count=int(cs.get("restartCount") or 0),
        )
    return found


def sync_container_statuses(crr: Obj) -> dict[str, Obj]:
    """The manager's snapshot of the containers: v1beta1 status field, or v1alpha1 annotation."""
    snapshot = status_of(crr).get("containerStatusSnapshot")
    if snapshot is None:
        raw = (meta(crr).get("annotations") or {}).get(ANNOTATION_SYNC_STATUSES)
        if not raw:
            return {}
        try:
            snapshot = json.loads(raw)
        except ValueError:
            return {}
    return {s["name"]: s for s in snapshot or [] if isinstance(s, dict) and "name" in s}


def recreate_state(name: str, phase: str, killed: bool = False, message: str = "") -> Obj:
    """A ContainerRecreateState as it serialises (``isKilled`` and ``message`` are omitempty)."""
    state: Obj = {"name": name, "phase": phase}
    if message:
        state["message"] = message
    if killed:
        state["isKilled"] = True
    return state


def recorded_states(crr: Obj) -> list[Obj]:
    return [
        recreate_state(
            s.get("name", ""), s.get("phase", ""), bool(s.get("isKilled")), s.get("message") or ""
        )
        for s in status_of(crr).get("containerRecreateStates") or []
    ]


def current_recreate_states(
    crr: Obj, containers: dict[str, RuntimeContainer], now: datetime
) -> list[Obj]:
    """getCurrentCRRContainersRecreateStates: each container's state from runtime and snapshot."""
    strategy = strategy_of(crr)
    min_started = timedelta(seconds=int(strategy.get("minStartedSeconds") or 0))
    force = bool(strategy.get("forceRecreate"))
    synced = sync_container_statuses(crr)
    previous = {s["name"]: s for s in recorded_states(crr)}
    states: list[Obj] = []
    for container in crr["spec"]["containers"]:
        name = container["name"]
        prev = previous.get(name)
        if prev is not None and prev["phase"] in (FAILED, SUCCEEDED):
            states.append(prev)
            continue
        killed = bool(prev and prev.get("isKilled"))
        context = container.get("statusContext")
        current = containers.get(name)
        if current is None:
            states.append(recreate_state(name, PENDING, killed, "not found container on Node"))
        elif not current.running:
            # an exited container will be restarted by the kubelet soon
            states.append(recreate_state(name, RECREATING, killed))
        elif force and not killed:
            states.append(recreate_state(name, PENDING))
        elif context is not None and (
            current.container_id != context.get("containerID")
            or current.restart_count > int(context.get("restartCount") or 0)
        ):
            snap = synced.get(name)
            done = (
                snap is not None
                and snap.get("containerID") == current.container_id
                and current.started_at is not None
                and now - current.started_at > min_started
                and bool(snap.get("ready"))
            )
            states.append(recreate_state(name, SUCCEEDED if done else RECREATING, killed))
        else:
            states.append(recreate_state(name, PENDING, killed))
    return states


def runtime_error(crr: Obj) -> str | None:
    """newRuntimeManager's checks of the containers' runtime; None when the runtime is found."""
    runtime = ""
    for container in crr["spec"]["containers"]:
        name = container["name"]
        container_id = (container.get("statusContext") or {}).get("containerID") or ""
        if not container_id:
            return f"no statusContext or empty containerID in {name} container"
        parts = container_id.strip('"').split("://")
        if len(parts) != 2:
            return (
                f"failed to parse containerID {container_id} in {name} container: "
                f"invalid container ID: {json.dumps(container_id)}"
            )
        if not runtime:
            runtime = parts[0]
        elif runtime != parts[0]:
            return f"has different runtime types {runtime}, {parts[0]} in Pod"
    if not runtime:
        return "no runtime type found in Pod"
    if runtime != RUNTIME:  # difference: the node only has containerd
        return f"not found runtime service for {runtime} in daemon"
    return None


def unready_grace_remaining(crr: Obj, now: datetime) -> float | None:
    """The unreadyGracePeriodSeconds gate in sync(): None to go on, else seconds to wait.

    ``math.inf`` means the manager has not yet made the pod unready (no PreRecreateGrace
    condition in v1beta1, no ``unready-acquired`` annotation in v1alpha1).
    """
    grace = strategy_of(crr).get("unreadyGracePeriodSeconds")
    if grace is None:
        return None
    since = pre_recreate_grace_time(crr)
    if since is None:
        return math.inf
    left = float(grace) - (now - since).total_seconds()
    return left if left > 0 else None


def pre_recreate_grace_time(crr: Obj) -> datetime | None:
    for condition in status_of(crr).get("conditions") or []:
        if (
            condition.get("type") == CONDITION_PRE_RECREATE_GRACE
            and condition.get("status") == "True"
        ):
            return parse_time(condition.get("lastTransitionTime"))
    return parse_time((meta(crr).get("annotations") or {}).get(ANNOTATION_UNREADY_ACQUIRED))


@dataclass(frozen=True)
class Step:
    """What one sync of the picked CRR decided to write (at most one of the two)."""

    patch_states: list[Obj] | None = None
    complete_message: str | None = None
    requeue_after: float | None = None


KillFn = Callable[[str, str], str | None]
"""Kill a container by (name, container ID); returns the error text, or None on success."""


def manage_step(
    crr: Obj, containers: dict[str, RuntimeContainer], now: datetime, kill: KillFn
) -> Step:
    """manage(): refresh the container states, or kill the next container, or complete."""
    problem = runtime_error(crr)
    if problem is not None:
        return Step(complete_message=f"failed to find runtime service: {problem}")

    recorded = recorded_states(crr)
    states = current_recreate_states(crr, containers, now)
    if states != recorded:
        return Step(patch_states=states)

    strategy = strategy_of(crr)
    ignore_failures = strategy.get("failurePolicy") == "Ignore"
    ordered = bool(strategy.get("orderedRecreate"))
    completed = 0
    for state in states:
        phase = state["phase"]
        if phase == SUCCEEDED:
            completed += 1
            continue
        if phase == FAILED:
            completed += 1
            if ignore_failures:
                continue
            return Step(complete_message="")
        if phase == RECREATING:
            state["isKilled"] = True
            if ordered:
                break
            continue
        current = containers.get(state["name"])
        if current is None:
            break
        error = kill(state["name"], current.container_id)
        if error is not None:
            state["phase"] = FAILED
            state["message"] = f"kill container error: {error}"
            if ignore_failures:
                continue
            return Step(patch_states=states)
        state["isKilled"] = True
        state["phase"] = RECREATING
        break  # one kill per sync, as the daemon does

    if states != recorded:
        return Step(patch_states=states)
    if completed == len(states):
        return Step(complete_message="")
    min_started = int(strategy.get("minStartedSeconds") or 0)
    return Step(requeue_after=float(min_started) if min_started > 0 else None)


def restarted_container_status(status: Obj, container_id: str, now: datetime) -> Obj:
    """A container status after the kubelet restarted the container (exit 137: killed)."""
    previous_start = ((status.get("state") or {}).get("running") or {}).get("startedAt")
    terminated: Obj = {
        "exitCode": KILL_EXIT_CODE,
        "reason": "Error",
        "finishedAt": format_time(now),
        "containerID": status.get("containerID"),
    }
    if previous_start:
        terminated["startedAt"] = previous_start
    return {
        **status,
        "containerID": container_id,
        "restartCount": int(status.get("restartCount") or 0) + 1,
        "ready": True,
        "started": True,
        "state": {"running": {"startedAt": format_time(now)}},
        "lastState": {"terminated": terminated},
    }


# --------------------------------------------------------------------------------------------
# kubelet decisions, pure
# --------------------------------------------------------------------------------------------


def kubelet_action(pod: Obj, node_name: str) -> str | None:
    """What the kubelet (and the missing scheduler) would do next with this pod.

    One of ``bind``, ``delete``, ``start``, ``conditions`` (re-evaluate readiness), or None.
    """
    spec = pod.get("spec") or {}
    terminating = bool(meta(pod).get("deletionTimestamp"))
    if not spec.get("nodeName"):
        return None if terminating or spec.get("schedulingGates") else "bind"
    if spec["nodeName"] != node_name:
        return None
    if terminating:
        return "delete"
    phase = status_of(pod).get("phase")
    if phase in ("Succeeded", "Failed"):
        return None
    return "conditions" if phase == "Running" else "start"


def image_id(image: str) -> str:
    repository = image.split("@", 1)[0]
    if repository.rfind(":") > repository.rfind("/"):
        repository = repository[: repository.rfind(":")]
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> Obj:
    condition: Obj = {"type": kind, "status": status}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def containers_ready_condition(spec: Obj, statuses: list[Obj]) -> Obj:
    """GenerateContainersReadyCondition for a running pod."""
    by_name = {s.get("name"): s for s in statuses}
    unknown = [c["name"] for c in spec.get("containers") or [] if c["name"] not in by_name]
    unready = [
        c["name"]
        for c in spec.get("containers") or []
        if c["name"] in by_name and not by_name[c["name"]].get("ready")
    ]
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: [{' '.join(unknown)}]")
    if unready:
        messages.append(f"containers with unready status: [{' '.join(unready)}]")
    if messages:
        return _condition("ContainersReady", "False", "ContainersNotReady", ", ".join(messages))
    return _condition("ContainersReady", "True")


def pod_ready_condition(spec: Obj, conditions: list[Obj], statuses: list[Obj]) -> Obj:
    """GeneratePodReadyCondition: ContainersReady, then every readiness gate must be True."""
    containers_ready = containers_ready_condition(spec, statuses)
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": "Ready"}
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in spec.get("readinessGates") or []:
        kind = gate.get("conditionType")
        found = by_type.get(kind)
        if found is None:
            messages.append(
                f'corresponding condition of pod readiness gate "{kind}" does not exist.'
            )
        elif found.get("status") != "True":
            state = found.get("status")
            messages.append(f'the status of pod readiness gate "{kind}" is not "True", but {state}')
    if messages:
        return _condition("Ready", "False", "ReadinessGatesNotReady", ", ".join(messages))
    return _condition("Ready", "True")


def merge_conditions(existing: list[Obj], ours: list[Obj], now: datetime) -> list[Obj]:
    """Upsert our conditions by type, keeping lastTransitionTime when the status is unchanged."""
    merged = [dict(c) for c in existing]
    index = {c.get("type"): i for i, c in enumerate(merged)}
    for condition in ours:
        position = index.get(condition["type"])
        old = merged[position] if position is not None else {}
        transition = format_time(now)
        if old.get("status") == condition["status"] and old.get("lastTransitionTime"):
            transition = old["lastTransitionTime"]
        new = {**condition, "lastProbeTime": None, "lastTransitionTime": transition}
        if position is None:
            index[condition["type"]] = len(merged)
            merged.append(new)
        else:
            merged[position] = new
    return merged


def _init_container_status(container: Obj, now: datetime) -> Obj:
    base: Obj = {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": image_id(container.get("image", "")),
        "containerID": new_container_id(),
        "restartCount": 0,
        "lastState": {},
    }
    if container.get("restartPolicy") == "Always":  # a sidecar keeps running
        return {
            **base,
            "ready": True,
            "started": True,
            "state": {"running": {"startedAt": format_time(now)}},
        }
    finished = {"exitCode": 0, "reason": "Completed", "startedAt": format_time(now)}
    finished["finishedAt"] = format_time(now)
    finished["containerID"] = base["containerID"]
    return {**base, "ready": True, "started": False, "state": {"terminated": finished}}


def running_pod_status(pod: Obj, pod_ip: str, now: datetime) -> Obj:
    """The status the kubelet reports once every container of the pod has started."""
    spec = pod.get("spec") or {}
    started = format_time(now)
    statuses = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": image_id(c.get("image", "")),
            "containerID": new_container_id(),
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": started}},
            "lastState": {},
        }
        for c in spec.get("containers") or []
    ]
    existing = status_of(pod).get("conditions") or []
    ours = [
        _condition("PodReadyToStartContainers", "True"),
        _condition("Initialized", "True"),
        containers_ready_condition(spec, statuses),
        _condition("PodScheduled", "True"),
    ]
    conditions = merge_conditions(existing, ours, now)
    conditions = merge_conditions(
        conditions, [pod_ready_condition(spec, conditions, statuses)], now
    )
    status: Obj = {
        "phase": "Running",
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "conditions": conditions,
        "containerStatuses": statuses,
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [
            _init_container_status(c, now) for c in spec["initContainers"]
        ]
    return status


def readiness_update(pod: Obj, now: datetime) -> list[Obj] | None:
    """The ContainersReady/Ready conditions to write for a running pod, or None if they hold."""
    spec, status = pod.get("spec") or {}, status_of(pod)
    conditions = status.get("conditions") or []
    statuses = status.get("containerStatuses") or []
    wanted = [
        containers_ready_condition(spec, statuses),
        pod_ready_condition(spec, conditions, statuses),
    ]
    by_type = {c.get("type"): c for c in conditions}
    fields = ("status", "reason", "message")
    if all(all((by_type.get(w["type"]) or {}).get(f) == w.get(f) for f in fields) for w in wanted):
        return None
    merged = merge_conditions(conditions, wanted, now)
    return [c for c in merged if c.get("type") in ("ContainersReady", "Ready")]


def node_status(node: Obj, now: datetime) -> Obj:
    """The status a healthy kubelet posts for its Node."""
    heartbeat = format_time(now)
    conditions = []
    for kind, status, reason, message in (
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ):
        condition = _condition(kind, status, reason, message)
        conditions.append({**condition, "lastHeartbeatTime": heartbeat})
    merged = merge_conditions(status_of(node).get("conditions") or [], conditions, now)
    for condition in merged:
        condition.pop("lastProbeTime", None)
    resources = {"cpu": "8", "memory": "32Gi", "pods": "250", "ephemeral-storage": "100Gi"}
    return {
        "conditions": merged,
        "addresses": [
            {"type": "InternalIP", "address": HOST_IP},
            {"type": "Hostname", "address": meta(node).get("name", "")},
        ],
        "capacity": resources,
        "allocatable": resources,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": "simulated",
            "systemUUID": "simulated",
            "bootID": "simulated",
            "kernelVersion": "simulated",
            "osImage": "crr-gateway simulator",
            "containerRuntimeVersion": f"{RUNTIME}://simulated",
            "kubeletVersion": "v1.32.10",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


# --------------------------------------------------------------------------------------------
# Plumbing: raw JSON calls, a delaying work queue, list/watch loops
# --------------------------------------------------------------------------------------------


def raw_json(response: Any) -> Any:
    """Read a ``_preload_content=False`` response (skips the client's slow, fragile models)."""
    try:
        data = response.data
    finally:
        response.release_conn()
    return json.loads(data) if data else None


def is_status(error: BaseException, *codes: int) -> bool:
    return isinstance(error, ApiException) and error.status in codes


class WorkQueue:
    """A de-duplicating delay queue of string keys (a small client-go DelayingInterface)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = itertools.count()
        self._closed = False

    def add(self, key: str, delay: float = 0.0) -> None:
        due = time.monotonic() + max(delay, 0.0)
        with self._cond:
            if self._closed or self._due.get(key, math.inf) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify()

    def get(self, timeout: float) -> str | None:
        """The next due key, or None after ``timeout`` seconds or once closed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier add
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    return key
                if now >= deadline:
                    return None
                wake = min(self._heap[0][0] if self._heap else math.inf, deadline)
                self._cond.wait(wake - now)
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class _Backoff:
    """Exponential retry delay that logs the first failure of a streak only."""

    def __init__(self, what: str, first: float = 0.2, limit: float = 5.0) -> None:
        self._what, self._first, self._limit = what, first, limit
        self._delay = first
        self._failing = False

    def failed(self, error: BaseException) -> float:
        if not self._failing:
            log.warning("%s failing, retrying with backoff: %s", self._what, error)
        else:
            log.debug("%s still failing: %s", self._what, error)
        self._failing = True
        delay = self._delay
        self._delay = min(self._delay * 2, self._limit)
        return delay

    def succeeded(self) -> None:
        if self._failing:
            log.info("%s recovered", self._what)
        self._failing = False
        self._delay = self._first


def iter_lines(response: Any) -> Iterator[str]:
    """Newline-delimited JSON lines of a streaming watch response."""
    buffer = bytearray()
    for chunk in response.stream(amt=None, decode_content=False):
        buffer.extend(chunk)
        while (end := buffer.find(b"\n")) != -1:
            line = bytes(buffer[:end]).decode("utf-8", errors="replace")
            del buffer[: end + 1]
            if line.strip():
                yield line


class Reflector:
    """List a collection, then watch it from the list's resourceVersion, forever.

    A normal end of a watch (``timeout_seconds``) resumes from the last resourceVersion; a 410 or
    an ERROR event relists at once; anything else (apiserver down, broken stream) relists after
    a backoff. Never raises; :meth:`stop` interrupts a blocked read at once.
    """

    def __init__(
        self,
        what: str,
        list_call: Callable[..., Any],
        on_list: Callable[[list[Obj]], None],
        on_event: Callable[[str, Obj], None],
        stop: threading.Event,
        label_selector: str | None = None,
    ) -> None:
        self._what = what
        self._list_call = list_call
        self._on_list = on_list
        self._on_event = on_event
        self._stop = stop
        self._selector: dict[str, str] = (
            {"label_selector": label_selector} if label_selector else {}
        )
        self._lock = threading.Lock()
        self._response: Any = None

    def run(self) -> None:
        backoff = _Backoff(f"list/watch of {self._what}")
        while not self._stop.is_set():
            try:
                version = self._list()
                backoff.succeeded()
                while not self._stop.is_set():
                    version = self._watch(version)
            except _Gone:
                log.debug("watch of %s expired; relisting", self._what)
            except Exception as error:
                if self._stop.is_set():
                    break
                if is_status(error, 410):
                    continue
                self._stop.wait(backoff.failed(error))

    def stop(self) -> None:
        """Call after setting the stop event: unblocks a watch that is waiting for data."""
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def _list(self) -> str:
        listed = raw_json(
            self._list_call(
                **self._selector, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        )
        self._on_list(list(listed.get("items") or []))
        return str(meta(listed).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        response = self._list_call(
            **self._selector,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_SECONDS,
            _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT[0], WATCH_TIMEOUT_SECONDS * 2.0),
        )
        with self._lock:
            self._response = response
        try:
            if self._stop.is_set():
                return version
            for line in iter_lines(response):
                version = self._handle(json.loads(line), version)
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._response = None
            response.close()
            response.release_conn()
        return version

    def _handle(self, event: Obj, version: str) -> str:
        kind = event.get("type")
        obj: Obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise RuntimeError(f"watch error: {obj.get('reason')}: {obj.get('message')}")
        if kind != "BOOKMARK":
            self._on_event(str(kind), obj)
        return str(meta(obj).get("resourceVersion") or version)


class _Aborted(Exception):
    """The daemon was stopped or taken down while it waited before a write."""


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------


class Simulator:
    """The kubelet and kruise-daemon of one node, acting through the apiserver.

    Failure injection (any time; :meth:`reset` restores the defaults):

    * :meth:`fail_kill` - killing that container fails with that message;
    * ``slow_seconds`` - the daemon waits that long before each of its writes and kills;
    * ``daemon_down`` - the daemon half writes nothing (the kubelet half keeps running).
    """

    def __init__(self, api_client: k8s.ApiClient, node_name: str) -> None:
        self.node_name = node_name
        self.slow_seconds: float = 0.0
        self.daemon_down: bool = False
        self._core = k8s.CoreV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self._crds = k8s.ApiextensionsV1Api(api_client)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pods: dict[str, Obj] = {}
        self._active_crrs: dict[tuple[str, str], str] = {}  # (namespace, name) -> pod key
        self._pod_ips: dict[str, str] = {}
        self._next_ip = itertools.count(1)
        self._started_at: dict[str, datetime] = {}
        self._kill_failures: dict[tuple[str, str, str], str] = {}
        self._kubelet_queue = WorkQueue()
        self._daemon_queue = WorkQueue()
        self._reflectors: list[Reflector] = []
        self._threads: list[threading.Thread] = []
        self._crr_version: str | None = None

    # -- public interface --------------------------------------------------------------------

    @property
    def crr_version(self) -> str | None:
        """The CRR version in use: v1beta1 if served at start, else v1alpha1 (None until known)."""
        return self._crr_version

    def start(self) -> None:
        if self._threads:
            return
        pods = Reflector(
            "pods",
            self._core.list_pod_for_all_namespaces,
            self._on_pods_listed,
            self._on_pod_event,
            self._stop,
        )
        self._reflectors.append(pods)
        for name, target in (
            ("sim-pod-watch", pods.run),
            ("sim-kubelet", self._run_kubelet),
            ("sim-crr-watch", self._run_crr_watch),
            ("sim-daemon", self._run_daemon),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kubelet_queue.close()
        self._daemon_queue.close()
        with self._lock:
            reflectors = list(self._reflectors)
        for reflector in reflectors:
            reflector.stop()
        deadline = time.monotonic() + 5.0
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
            if thread.is_alive():
                log.warning("simulator thread %s did not stop in time", thread.name)

    def fail_kill(
        self, namespace: str, pod: str, container: str, message: str = DEFAULT_KILL_FAILURE
    ) -> None:
        with self._lock:
            self._kill_failures[(namespace, pod, container)] = message

    def reset(self) -> None:
        with self._lock:
            self._kill_failures.clear()
        self.slow_seconds = 0.0
        self.daemon_down = False

    # -- kubelet half ------------------------------------------------------------------------

    def _on_pods_listed(self, items: list[Obj]) -> None:
        with self._lock:
            self._pods = {meta(p)["uid"]: p for p in items}
        for pod in items:
            self._kubelet_queue.add(meta(pod)["uid"])

    def _on_pod_event(self, kind: str, pod: Obj) -> None:
        uid = meta(pod)["uid"]
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(uid, None)
                self._pod_ips.pop(uid, None)
                return
            self._pods[uid] = pod
        self._kubelet_queue.add(uid)

    def _run_kubelet(self) -> None:
        heartbeat_due = 0.0
        node_backoff = _Backoff(f"status of node {self.node_name}")
        while not self._stop.is_set():
            if time.monotonic() >= heartbeat_due:
                try:
                    self._post_node_status()
                    node_backoff.succeeded()
                    heartbeat_due = time.monotonic() + NODE_HEARTBEAT_SECONDS
                except Exception as error:
                    heartbeat_due = time.monotonic() + node_backoff.failed(error)
            uid = self._kubelet_queue.get(timeout=1.0)
            if uid is None:
                continue
            try:
                self._sync_pod(uid)
            except Exception as error:
                log.debug("kubelet sync of pod %s failed, retrying: %s", uid, error)
                self._kubelet_queue.add(uid, 1.0)

    def _sync_pod(self, uid: str) -> None:
        with self._lock:
            pod = self._pods.get(uid)
        if pod is None:
            return
        action = kubelet_action(pod, self.node_name)
        if action == "bind":
            self._bind(pod)
        elif action == "delete":
            self._delete(pod)
        elif action == "start":
            self._start_pod(pod)
        elif action == "conditions":
            self._update_readiness(pod)

    def _bind(self, pod: Obj) -> None:
        # Plays the scheduler: there is one node. _preload_content=False sidesteps the client
        # failing to read the Status the binding subresource answers with.
        binding = k8s.V1Binding(
            metadata=k8s.V1ObjectMeta(name=meta(pod)["name"], uid=meta(pod)["uid"]),
            target=k8s.V1ObjectReference(api_version="v1", kind="Node", name=self.node_name),
        )
        try:
            raw_json(
                self._core.create_namespaced_binding(
                    meta(pod)["namespace"],
                    binding,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
            log.debug("bound pod %s/%s", meta(pod)["namespace"], meta(pod)["name"])
        except ApiException as error:
            if not is_status(error, 404, 409):
                raise

    def _delete(self, pod: Obj) -> None:
        options = k8s.V1DeleteOptions(
            grace_period_seconds=0, preconditions=k8s.V1Preconditions(uid=meta(pod)["uid"])
        )
        try:
            raw_json(
                self._core.delete_namespaced_pod(
                    meta(pod)["name"],
                    meta(pod)["namespace"],
                    grace_period_seconds=0,
                    body=options,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            if not is_status(error, 404, 409):
                raise

    def _pod_ip(self, uid: str) -> str:
        with self._lock:
            if uid not in self._pod_ips:
                n = next(self._next_ip)
                self._pod_ips[uid] = f"10.244.{n // 250 % 256}.{n % 250 + 2}"
            return self._pod_ips[uid]

    def _start_pod(self, pod: Obj) -> None:
        now = now_utc()
        status = running_pod_status(pod, self._pod_ip(meta(pod)["uid"]), now)
        body = {"metadata": {"resourceVersion": meta(pod)["resourceVersion"]}, "status": status}
        try:
            self._patch_pod_status(pod, body, "application/merge-patch+json")
        except ApiException as error:
            if is_status(error, 409):  # the watch brings the newer pod and another try
                return
            if not is_status(error, 404):
                raise
            return
        with self._lock:
            for container in status["containerStatuses"]:
                self._started_at[container["containerID"]] = now
        log.info("pod %s/%s is running", meta(pod)["namespace"], meta(pod)["name"])

    def _update_readiness(self, pod: Obj) -> None:
        conditions = readiness_update(pod, now_utc())
        if conditions is None:
            return
        body = {"status": {"conditions": conditions}}
        try:
            self._patch_pod_status(pod, body, "application/strategic-merge-patch+json")
        except ApiException as error:
            if not is_status(error, 404):
                raise

    def _patch_pod_status(self, pod: Obj, body: Obj, content_type: str) -> Obj:
        result: Obj = raw_json(
            self._core.patch_namespaced_pod_status(
                meta(pod)["name"],
                meta(pod)["namespace"],
                body,
                _content_type=content_type,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
        return result

    def _post_node_status(self) -> None:
        try:
            node: Obj = raw_json(
                self._core.read_node(
                    self.node_name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as error:
            if not is_status(error, 404):
                raise
            labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux"}
            created = k8s.V1Node(metadata=k8s.V1ObjectMeta(name=self.node_name, labels=labels))
            node = raw_json(
                self._core.create_node(
                    created, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        raw_json(
            self._core.patch_node_status(
                self.node_name,
                {"status": node_status(node, now_utc())},
                _content_type="application/strategic-merge-patch+json",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )

    # -- kruise-daemon half: which pods have active CRRs ----------------------------------------

    def _run_crr_watch(self) -> None:
        backoff = _Backoff("discovery of the CRR API version")
        while self._crr_version is None and not self._stop.is_set():
            try:
                self._crr_version = self._discover_crr_version()
                backoff.succeeded()
            except Exception as error:
                self._stop.wait(backoff.failed(error))
        version = self._crr_version
        if version is None:
            return
        log.info("kruise-daemon simulator uses %s/%s", GROUP, version)
        reflector = Reflector(
            "containerrecreaterequests",
            lambda **kw: self._custom.list_cluster_custom_object(GROUP, version, PLURAL, **kw),
            self._on_crrs_listed,
            self._on_crr_event,
            self._stop,
            label_selector=self._crr_selector(),
        )
        with self._lock:
            self._reflectors.append(reflector)
        if not self._stop.is_set():
            reflector.run()

    def _discover_crr_version(self) -> str:
        crd: Obj = raw_json(
            self._crds.read_custom_resource_definition(
                CRD_NAME, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        )
        served = {
            v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")
        }
        return "v1beta1" if "v1beta1" in served else "v1alpha1"

    def _on_crrs_listed(self, items: list[Obj]) -> None:
        active = {
            (meta(c)["namespace"], meta(c)["name"]): crr_group_key(c)
            for c in items
            if not is_finished(c)
        }
        with self._lock:
            self._active_crrs = active
        for pod_key in set(active.values()):
            self._daemon_queue.add(pod_key)

    def _on_crr_event(self, kind: str, crr: Obj) -> None:
        key = (meta(crr)["namespace"], meta(crr)["name"])
        with self._lock:
            if kind == "DELETED" or is_finished(crr):
                self._active_crrs.pop(key, None)
                return
            self._active_crrs[key] = crr_group_key(crr)
        self._daemon_queue.add(crr_group_key(crr))

    # -- kruise-daemon half: sync ----------------------------------------------------------------

    def _run_daemon(self) -> None:
        backoff = _Backoff("kruise-daemon simulator sync")
        poll_due = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= poll_due:  # difference: the daemon relies on events alone
                poll_due = time.monotonic() + DAEMON_POLL_SECONDS
                with self._lock:
                    pod_keys = set(self._active_crrs.values())
                for pod_key in pod_keys:
                    self._daemon_queue.add(pod_key)
            key = self._daemon_queue.get(timeout=DAEMON_POLL_SECONDS)
            if key is None or self.daemon_down:
                continue
            try:
                requeue = self._sync_crrs(key)
                backoff.succeeded()
                if requeue is not None:
                    self._daemon_queue.add(key, requeue)
            except _Aborted:
                pass
            except Exception as error:
                self._daemon_queue.add(key, backoff.failed(error))

    def _sync_crrs(self, key: str) -> float | None:
        """sync(): one pass over the CRRs of one pod; returns a delay to look again after."""
        namespace, pod_name = key.split("/", 1)
        # Difference: a consistent LIST, not the watch cache. Right after our own writes the cache
        # can hold a Pending CRR next to a not-yet-Recreating one, and the phase sort would then
        # start a second CRR on the pod (the daemon narrows that window with expectations).
        picked, to_pending = pick_crr(self._list_crrs(namespace, pod_name))
        for other in to_pending:
            self._set_phase(other, PENDING, only_if_unset=True)
        if picked is None:
            return None
        crr = picked
        if crr_phase(crr) != RECREATING:
            self._set_phase(crr, RECREATING)
            return None

        remaining = unready_grace_remaining(crr, now_utc())
        if remaining is not None:
            # waiting for the manager to make the pod unready, or for the grace period to pass
            return None if math.isinf(remaining) else remaining + 0.1

        pod = self._read_pod(namespace, pod_name)
        containers = self._runtime_view(pod, (meta(crr).get("labels") or {}).get(LABEL_POD_UID, ""))

        def kill(name: str, container_id: str) -> str | None:
            return self._kill(crr, pod, name, container_id)

        step = manage_step(crr, containers, now_utc(), kill)
        if step.patch_states is not None:
            self._patch_states(crr, step.patch_states)
        elif step.complete_message is not None:
            self._complete(crr, step.complete_message)
        return step.requeue_after

    def _runtime_view(self, pod: Obj | None, pod_uid: str) -> dict[str, RuntimeContainer]:
        """The pod's containers, with the exact start times we recorded (the pod's are seconds)."""
        containers = runtime_containers(pod, pod_uid)
        with self._lock:
            return {
                name: RuntimeContainer(
                    name=c.name,
                    container_id=c.container_id,
                    running=c.running,
                    started_at=self._started_at.get(c.container_id, c.started_at),
                    restart_count=c.restart_count,
                )
                for name, c in containers.items()
            }

    def _before_write(self) -> None:
        """Slow mode waits here; a daemon taken down (or stopped) meanwhile writes nothing."""
        if self.slow_seconds > 0:
            self._stop.wait(self.slow_seconds)
        if self.daemon_down or self._stop.is_set():
            raise _Aborted

    def _kill(self, crr: Obj, pod: Obj | None, name: str, container_id: str) -> str | None:
        """KillContainer: restart the container in the pod's status, as the kubelet would report.

        Differences: no preStop hook, no grace period, no Killing event; the new container is
        running and ready at once.
        """
        self._before_write()
        namespace, pod_name = meta(crr)["namespace"], crr["spec"]["podName"]
        with self._lock:
            failure = self._kill_failures.get((namespace, pod_name, name))
        if failure is not None:
            log.info("kill of %s/%s/%s fails (injected): %s", namespace, pod_name, name, failure)
            return failure
        for _ in range(CONFLICT_RETRIES):
            if pod is None:
                return f'rpc error: code = NotFound desc = container "{container_id}" not found'
            if self._restart_container(pod, name, container_id):
                log.info("killed container %s of pod %s/%s", name, namespace, pod_name)
                return None
            pod = self._read_pod(namespace, pod_name)
        return "rpc error: code = Unavailable desc = conflicting pod status updates"

    def _restart_container(self, pod: Obj, name: str, container_id: str) -> bool:
        """Write the restarted container; False on a write conflict (read the pod again)."""
        now = now_utc()
        new_id = new_container_id()
        statuses = []
        for status in status_of(pod).get("containerStatuses") or []:
            if status.get("name") == name and status.get("containerID") == container_id:
                status = restarted_container_status(status, new_id, now)
            statuses.append(status)
        body = {
            "metadata": {"resourceVersion": meta(pod)["resourceVersion"]},
            "status": {"containerStatuses": statuses},
        }
        with self._lock:
            self._started_at[new_id] = now
        try:
            self._patch_pod_status(pod, body, "application/merge-patch+json")
        except ApiException as error:
            if is_status(error, 409):
                return False
            raise
        return True

    # -- kruise-daemon half: CRR writes ------------------------------------------------------------

    def _read_pod(self, namespace: str, name: str) -> Obj | None:
        try:
            pod: Obj = raw_json(
                self._core.read_namespaced_pod(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as error:
            if is_status(error, 404):
                return None
            raise
        return pod

    def _read_crr(self, namespace: str, name: str) -> Obj | None:
        try:
            crr: Obj = raw_json(
                self._custom.get_namespaced_custom_object(
                    GROUP,
                    self._version(),
                    namespace,
                    PLURAL,
                    name,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            if is_status(error, 404):
                return None
            raise
        return crr

    def _list_crrs(self, namespace: str, pod_name: str) -> list[Obj]:
        """The active CRRs of this node for one pod, as the daemon's informer selects them."""
        listed: Obj = raw_json(
            self._custom.list_namespaced_custom_object(
                GROUP,
                self._version(),
                namespace,
                PLURAL,
                label_selector=self._crr_selector(),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
        return [c for c in listed.get("items") or [] if c["spec"].get("podName") == pod_name]

    def _crr_selector(self) -> str:
        return f"{LABEL_NODE_NAME}={self.node_name},{LABEL_ACTIVE}=true"

    def _version(self) -> str:
        if self._crr_version is None:
            raise RuntimeError("CRR API version not discovered yet")
        return self._crr_version

    def _patch_crr_status(self, crr: Obj, body: Obj) -> None:
        raw_json(
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                self._version(),
                meta(crr)["namespace"],
                PLURAL,
                meta(crr)["name"],
                body,
                _content_type="application/merge-patch+json",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )

    def _update_status(self, crr: Obj, change: Callable[[Obj], Obj | None]) -> None:
        """Read the CRR fresh and write ``change(fresh)`` guarded by its resourceVersion;
        retried on conflict (the daemon's Get + Status().Update under RetryOnConflict)."""
        for _ in range(CONFLICT_RETRIES):
            fresh = self._read_crr(meta(crr)["namespace"], meta(crr)["name"])
            if fresh is None or is_finished(fresh):  # difference: never rewrite a finished CRR
                return
            status = change(fresh)
            if status is None:
                return
            self._before_write()
            body = {
                "metadata": {"resourceVersion": meta(fresh)["resourceVersion"]},
                "status": status,
            }
            try:
                self._patch_crr_status(fresh, body)
                return
            except ApiException as error:
                if not is_status(error, 409):
                    raise
        raise RuntimeError(f"conflicts writing CRR {meta(crr)['namespace']}/{meta(crr)['name']}")

    def _set_phase(self, crr: Obj, phase: str, only_if_unset: bool = False) -> None:
        """updateCRRPhase. Difference: ``only_if_unset`` re-checks the fresh phase for Pending."""

        def change(fresh: Obj) -> Obj | None:
            if only_if_unset and crr_phase(fresh) != "":
                return None
            return {"phase": phase}

        self._update_status(crr, change)
        log.debug("CRR %s/%s phase %s", meta(crr)["namespace"], meta(crr)["name"], phase)

    def _patch_states(self, crr: Obj, states: list[Obj]) -> None:
        """patchCRRContainerRecreateStates: a plain merge patch, no resourceVersion."""
        self._before_write()
        self._patch_crr_status(crr, {"status": {"containerRecreateStates": states}})

    def _complete(self, crr: Obj, message: str) -> None:
        """completeCRRStatus: Completed, completionTime now, the message (empty on success)."""
        completion = format_time(now_utc())
        self._update_status(
            crr,
            lambda _fresh: {
                "phase": COMPLETED,
                "completionTime": completion,
                "message": message or None,
            },
        )
        log.info(
            "CRR %s/%s completed%s",
            meta(crr)["namespace"],
            meta(crr)["name"],
            f": {message}" if message else "",
        )


@contextlib.contextmanager
def running_simulator(api_client: k8s.ApiClient, node_name: str) -> Iterator[Simulator]:
    """A started simulator for the block; stopped (threads joined) when it ends."""
    sim = Simulator(api_client, node_name)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
