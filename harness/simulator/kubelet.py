"""The kubelet's decisions for the pods of our node (and the missing scheduler's), pure.

Statuses and conditions are built as the kubelet's status manager writes them
(``pkg/kubelet/status`` and ``kubelet_pods.go`` in Kubernetes v1.32), on plain dicts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from harness.simulator.objects import (
    HOST_IP,
    KILL_EXIT_CODE,
    RUNTIME,
    Obj,
    format_time,
    meta,
    new_container_id,
    status_of,
)


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
