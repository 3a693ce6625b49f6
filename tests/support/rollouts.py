"""Rollouts in tests on the real control plane: their URLs, following one, workloads and their
pods (a CloneSet the real kruise-manager fills; Deployments, ReplicaSets and StatefulSets whose
pods the test makes, as no kube-controller-manager runs here), the restarts a rollout made, and
an independent watch of pod readiness that records the most pods unready at once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.watching import ApiWatch, ListCall, Obj
from tests.support.api import GROUP, PLURAL
from tests.support.waiting import wait_until

ROLLOUT_LABEL = "crr-gateway.io/rollout"
FAIL_KILL = "crr-gateway.test/fail-kill"


# ---------------------------------------------------------------- the API


def rollouts_url(namespace: str, name: str = "", action: str = "") -> str:
    url = f"/v1/namespaces/{namespace}/rollouts"
    if name:
        url += f"/{name}"
    if action:
        url += f"/{action}"
    return url


def create_rollout(api: httpx.Client, namespace: str, **body: Any) -> Obj:
    response = api.post(rollouts_url(namespace), json=body)
    assert response.status_code == 201, response.text
    created: Obj = response.json()
    return created


def follow_rollout(
    api: httpx.Client,
    namespace: str,
    name: str,
    until: Callable[[Obj], bool] = lambda r: bool(r["finished"]),
    timeout: float = 120,
) -> Obj:
    """Long-poll the rollout until ``until`` holds (by default: until it has finished)."""
    deadline = time.monotonic() + timeout
    response = api.get(rollouts_url(namespace, name))
    assert response.status_code == 200, response.text
    rollout: Obj = response.json()
    while not until(rollout):
        assert time.monotonic() < deadline, f"rollout never got there: {rollout}"
        assert not rollout["finished"], f"rollout finished without getting there: {rollout}"
        response = api.get(
            rollouts_url(namespace, name),
            params={"wait": 10, "resourceVersion": rollout["resourceVersion"]},
        )
        assert response.status_code == 200, response.text
        rollout = response.json()
    return rollout


def states(rollout: Obj) -> dict[str, str]:
    return {p["pod"]: p["state"] for p in rollout["pods"]}


def in_state(rollout: Obj, state: str) -> list[str]:
    return [p["pod"] for p in rollout["pods"] if p["state"] == state]


# ---------------------------------------------------------------- workloads and pods


def pod_template(
    labels: Mapping[str, str],
    containers: Iterable[str] = ("app", "sidecar"),
    *,
    readiness_gate: bool = True,
) -> Obj:
    """A pod template: the ``KruisePodReady`` gate (a restart takes the pod out of Ready
    before the kill, as on a real cluster) and a short grace period."""
    spec: Obj = {
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": c, "image": f"example.test/{c}:1.0"} for c in containers],
    }
    if readiness_gate:
        spec["readinessGates"] = [{"conditionType": "KruisePodReady"}]
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def create_cloneset(
    kube: k8s.ApiClient,
    namespace: str,
    name: str,
    replicas: int,
    containers: Iterable[str] = ("app", "sidecar"),
) -> list[Obj]:
    """A CloneSet; kruise-manager makes its pods and the simulated node runs them. Returns
    the pods once all are Ready."""
    labels = {"app": name}
    body = {
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels, containers),
        },
    }
    k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
        "apps.kruise.io", "v1alpha1", namespace, "clonesets", body
    )
    return wait_ready(kube, namespace, f"app={name}", replicas)


def scale_cloneset(kube: k8s.ApiClient, namespace: str, name: str, replicas: int) -> None:
    k8s.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "apps.kruise.io", "v1alpha1", namespace, "clonesets", name, {"spec": {"replicas": replicas}}
    )


def owner(obj: Obj) -> Obj:
    """An ownerReference to ``obj`` as its controller."""
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def create_workload(kube: k8s.ApiClient, namespace: str, body: Obj) -> Obj:
    """Create an apps/v1 object (no controller acts on it here) and return it as stored."""
    plural = {"Deployment": "deployments", "ReplicaSet": "replicasets"}.get(
        body["kind"], "statefulsets"
    )
    created: Obj = k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
        "apps", "v1", namespace, plural, body
    )
    return created


def apps_v1(kind: str, name: str, labels: Mapping[str, str], **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": spec.pop("replicas", 3),
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels),
            **spec,
        },
    }


def run_pods(
    kube: k8s.ApiClient,
    namespace: str,
    names: Iterable[str],
    labels: Mapping[str, str],
    containers: Iterable[str] = ("app", "sidecar"),
    *,
    owned_by: Obj | None = None,
    annotations: Mapping[str, str] | None = None,
    readiness_gate: bool = True,
) -> list[Obj]:
    """Pods made as a workload controller would make them (its labels, an ownerReference to
    it), without a node: the simulated kubelet schedules and runs them. Returns them Ready."""
    core = k8s.CoreV1Api(kube)
    names = list(names)
    containers = list(containers)
    for name in names:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            **pod_template(labels, containers, readiness_gate=readiness_gate),
        }
        body["metadata"] = {"name": name, "labels": dict(labels)}
        if owned_by is not None:
            body["metadata"]["ownerReferences"] = [owner(owned_by)]
        if annotations:
            body["metadata"]["annotations"] = dict(annotations)
        core.create_namespaced_pod(namespace, body)
    return [wait_pod_ready(kube, namespace, name) for name in names]


def by_name(pods: Iterable[Obj]) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in pods}


def read(kube: k8s.ApiClient, namespace: str, name: str) -> Obj:
    response = k8s.CoreV1Api(kube).read_namespaced_pod(name, namespace, _preload_content=False)
    pod: Obj = json.loads(response.data)
    return pod


def is_ready(pod: Mapping[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def wait_pod_ready(kube: k8s.ApiClient, namespace: str, name: str) -> Obj:
    def ready() -> Obj | None:
        pod = read(kube, namespace, name)
        return pod if is_ready(pod) else None

    pod: Obj = wait_until(f"pod {namespace}/{name} Ready", ready)
    return pod


def list_pods(kube: k8s.ApiClient, namespace: str, selector: str) -> list[Obj]:
    response = k8s.CoreV1Api(kube).list_namespaced_pod(
        namespace, label_selector=selector, _preload_content=False
    )
    items: list[Obj] = json.loads(response.data)["items"]
    return sorted(items, key=lambda p: p["metadata"]["name"])


def wait_ready(kube: k8s.ApiClient, namespace: str, selector: str, count: int) -> list[Obj]:
    def all_ready() -> list[Obj] | None:
        pods = list_pods(kube, namespace, selector)
        return pods if len(pods) == count and all(is_ready(p) for p in pods) else None

    pods: list[Obj] = wait_until(f"{count} pods {selector} Ready", all_ready, timeout=60)
    return pods


def containers_of(pod: Obj) -> dict[str, tuple[str, int]]:
    """Each container's (ID, restartCount)."""
    return {
        s["name"]: (s.get("containerID", ""), s.get("restartCount", 0))
        for s in pod["status"].get("containerStatuses") or []
    }


def restarted(before: Obj, after: Obj) -> dict[str, int]:
    """How many times each container of the pod restarted between the two reads (the
    restartCount delta), after checking the ID changed exactly when the count did."""
    old, new = containers_of(before), containers_of(after)
    counts: dict[str, int] = {}
    for name, (old_id, old_count) in old.items():
        new_id, new_count = new[name]
        counts[name] = new_count - old_count
        assert (new_id != old_id) == (counts[name] > 0), (name, old[name], new[name])
    return counts


# ---------------------------------------------------------------- restarts


def rollout_crrs(kube: k8s.ApiClient, namespace: str, rollout: str) -> list[Obj]:
    listed = k8s.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, "v1beta1", namespace, PLURAL, label_selector=f"{ROLLOUT_LABEL}={rollout}"
    )
    items: list[Obj] = listed["items"]
    return items


def crrs_per_pod(kube: k8s.ApiClient, namespace: str, rollout: str) -> Counter[str]:
    return Counter(c["spec"]["podName"] for c in rollout_crrs(kube, namespace, rollout))


def rollout_objects(kube: k8s.ApiClient, namespace: str) -> list[Obj]:
    listed = k8s.CustomObjectsApi(kube).list_namespaced_custom_object(
        "crr-gateway.io", "v1alpha1", namespace, "restartrollouts"
    )
    items: list[Obj] = listed["items"]
    return items


# ---------------------------------------------------------------- the independent witness


class UnreadyWatch(ApiWatch):
    """A watch of the pods ``selector`` matches (``harness/watching.py``): ``peak`` is the most
    pods not Ready at once among those that exist (a deleted pod stops counting). Nothing of
    the service is used. Use as a context manager; errors of the thread are raised when the
    block ends."""

    name = "unready-watch"

    def __init__(self, plane: ControlPlane, namespace: str, selector: str) -> None:
        super().__init__(plane, namespace, selector)
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.peak = 0
        self.went_unready: Counter[str] = Counter()  # pod -> times it went from Ready to not
        self.order: list[str] = []  # pods in the order they first went unready

    def __enter__(self) -> UnreadyWatch:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        if self._failure is not None and kind is None:
            raise AssertionError(f"the pod watch failed: {self._failure!r}") from self._failure

    def unready(self) -> list[str]:
        with self._lock:
            return sorted(name for name, ready in self._ready.items() if not ready)

    def list_call(self, api: k8s.ApiClient) -> tuple[ListCall, tuple[Any, ...]]:
        return k8s.CoreV1Api(api).list_namespaced_pod, (self._namespace,)

    def relisted(self, items: list[Obj]) -> None:
        with self._lock:
            self._ready.clear()
        for pod in items:
            self.apply("ADDED", pod)

    def apply(self, kind: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self._ready.pop(name, None)
                return
            ready = is_ready(obj)
            if self._ready.get(name, False) and not ready:
                self.went_unready[name] += 1
                if name not in self.order:
                    self.order.append(name)
            self._ready[name] = ready
            self.peak = max(self.peak, sum(1 for r in self._ready.values() if not r))
