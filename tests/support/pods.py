"""Pods for tests: ``pod`` as the apiserver returns a running one (for the pure rules),
``pod_manifest`` to create one on the control plane, and reading one back."""

from __future__ import annotations

import json
from typing import Any, Protocol

from kubernetes import client as k8s

from tests.support.waiting import wait_until


class MakePod(Protocol):
    def __call__(
        self,
        name: str,
        containers: tuple[str, ...] | list[str] = ("app",),
        *,
        ports: bool = False,
        pre_stop: bool = False,
        readiness_gate: bool = False,
        namespace: str | None = None,
        wait: bool = True,
    ) -> dict[str, Any]: ...


def pod_manifest(
    name: str,
    containers: tuple[str, ...] | list[str],
    *,
    ports: bool = False,
    pre_stop: bool = False,
    readiness_gate: bool = False,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    specs: list[dict[str, Any]] = []
    for index, container in enumerate(containers):
        spec: dict[str, Any] = {"name": container, "image": f"example.test/{container}:1.0"}
        if ports:
            spec["ports"] = [{"name": f"http-{index}", "containerPort": 8080 + index}]
        if pre_stop:
            spec["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1"]}}}
        specs.append(spec)
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": specs, "terminationGracePeriodSeconds": 5},
    }
    if readiness_gate:
        pod["spec"]["readinessGates"] = [{"conditionType": "KruisePodReady"}]
    if restart_policy is not None:
        pod["spec"]["restartPolicy"] = restart_policy
    return pod


def read_pod(kube: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    resp = k8s.CoreV1Api(kube).read_namespaced_pod(name, namespace, _preload_content=False)
    pod: dict[str, Any] = json.loads(resp.data)
    return pod


def run_pod(
    kube: k8s.ApiClient, namespace: str, name: str, containers: tuple[str, ...] = ("app",)
) -> dict[str, Any]:
    """Create a pod on whichever control plane ``kube`` talks to and wait until it runs."""
    k8s.CoreV1Api(kube).create_namespaced_pod(namespace, pod_manifest(name, containers))

    def running() -> dict[str, Any] | None:
        pod = read_pod(kube, namespace, name)
        return pod if pod_is_running(pod) else None

    result: dict[str, Any] = wait_until(f"pod {namespace}/{name} running", running)
    return result


def pod_is_running(pod: dict[str, Any]) -> bool:
    status = pod.get("status", {})
    statuses = status.get("containerStatuses") or []
    names = {c["name"] for c in pod["spec"]["containers"]}
    return (
        status.get("phase") == "Running"
        and {s["name"] for s in statuses} == names
        and all(s.get("containerID") for s in statuses)
    )


def pod(
    containers: tuple[str, ...] = ("app", "sidecar"),
    *,
    phase: str = "Running",
    node: str | None = "node-1",
    ids: bool = True,
    gates: bool = False,
    deleting: bool = False,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    """Pod ``ns/web-0`` as read from the apiserver, for the pure rules and the route tests."""
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": c,
                "ports": [{"containerPort": 80}],
                "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
            }
            for c in containers
        ],
        "initContainers": [{"name": "init"}],
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 30,
    }
    if node:
        spec["nodeName"] = node
    if gates:
        spec["readinessGates"] = [{"conditionType": "KruisePodReady"}]
    metadata: dict[str, Any] = {"name": "web-0", "namespace": "ns", "uid": "uid-1"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    statuses = [
        {"name": c, "containerID": f"containerd://{c}" if ids else "", "restartCount": 0}
        for c in containers
    ]
    return {
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase, "containerStatuses": statuses},
    }
