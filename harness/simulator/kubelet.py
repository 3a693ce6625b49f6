"""The kubelet's decisions for the pods of our node (and the missing scheduler's), pure.

Statuses and conditions are built as the kubelet's status manager writes them
(``pkg/kubelet/status`` and ``kubelet_pods.go`` in Kubernetes v1.32), on plain dicts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from harness.simulator.lifecycle import container_status
from harness.simulator.objects import (
    HOST_IP,
    RUNTIME,
    Obj,
    format_time,
    meta,
    new_container_id,
    status_of,
)
from harness.simulator.runtime import Container


def kubelet_action(pod: Obj, node_name: str) -> str | None:
    """What the kubelet (and the missing scheduler) would do next with this pod.

    One of ``bind``, ``delete``, ``sync`` (run its containers and report them), or None.
    """
    spec = pod.get("spec") or {}
    terminating = bool(meta(pod).get("deletionTimestamp"))
    if not spec.get("nodeName"):
        return None if terminating or spec.get("schedulingGates") else "bind"
    if spec["nodeName"] != node_name:
        return None
    if terminating:
        return "delete"
    if status_of(pod).get("phase") in ("Succeeded", "Failed"):
        return None  # terminal: nothing runs any more
    return "sync"


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


def containers_ready_condition(spec: Obj, statuses: list[Obj], phase: str = "Running") -> Obj:
    """GenerateContainersReadyCondition."""
    if phase in ("Succeeded", "Failed"):
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        return _condition("ContainersReady", "False", reason)
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


def pod_ready_condition(
    spec: Obj, conditions: list[Obj], statuses: list[Obj], phase: str = "Running"
) -> Obj:
    """GeneratePodReadyCondition: ContainersReady, then every readiness gate must be True."""
    containers_ready = containers_ready_condition(spec, statuses, phase)
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


def pod_phase(spec: Obj, statuses: list[Obj]) -> str:
    """getPhase for a pod whose init containers have completed."""
    by_name = {s.get("name"): s for s in statuses}
    running = stopped = succeeded = waiting = unknown = 0
    for container in spec.get("containers") or []:
        status = by_name.get(container["name"])
        state = (status or {}).get("state") or {}
        if status is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif ((status.get("lastState") or {}).get("terminated")) is not None:
            stopped += 1  # waiting to start again after an exit
        else:
            waiting += 1
    policy = spec.get("restartPolicy") or "Always"
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if stopped and not running and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def pod_status(
    pod: Obj,
    containers: dict[str, list[Container]],
    waiting: dict[str, Obj],
    pod_ip: str,
    now: datetime,
) -> Obj:
    """The status the kubelet's status manager writes for a pod from what runs on the node.

    ``containers`` are each name's instances in the runtime, newest first; ``waiting`` the
    Waiting state of those held back (CrashLoopBackOff). A name with no instance yet is left out
    (the kubelet starts every container of a new pod in the same sync, so there is none).
    """
    spec, previous = pod.get("spec") or {}, status_of(pod)
    specs = {c["name"]: c for c in spec.get("containers") or []}
    reported = {s.get("name"): s for s in previous.get("containerStatuses") or []}
    statuses = [
        container_status(
            specs.get(name, {}),
            containers[name],
            image_id(containers[name][0].image),
            waiting.get(name),
            now,
            reported.get(name),
        )
        for name in sorted(containers)  # SortedContainerStatuses: by name
    ]
    phase = pod_phase(spec, statuses)
    ours = [
        _condition("PodReadyToStartContainers", "True"),
        _condition("Initialized", "True"),
        containers_ready_condition(spec, statuses, phase),
        _condition("PodScheduled", "True"),
    ]
    conditions = merge_conditions(previous.get("conditions") or [], ours, now)
    ready = pod_ready_condition(spec, conditions, statuses, phase)
    status: Obj = {
        "phase": phase,
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": previous.get("startTime") or format_time(now),
        "conditions": merge_conditions(conditions, [ready], now),
        "containerStatuses": statuses,
    }
    if spec.get("initContainers"):
        status["initContainerStatuses"] = previous.get("initContainerStatuses") or [
            _init_container_status(c, now) for c in spec["initContainers"]
        ]
    return status


_COMPARED = ("phase", "podIP", "containerStatuses", "initContainerStatuses")
_CONDITION_FIELDS = ("type", "status", "reason", "message")


def status_differs(current: Obj, wanted: Obj) -> bool:
    """Whether writing ``wanted`` changes what the pod reports (transition times aside)."""
    if any(current.get(key) != wanted.get(key) for key in _COMPARED):
        return True

    def conditions(status: Obj) -> list[tuple[object, ...]]:
        found = [tuple(c.get(f) for f in _CONDITION_FIELDS) for c in status.get("conditions") or []]
        return sorted(found, key=str)

    return conditions(current) != conditions(wanted)


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
