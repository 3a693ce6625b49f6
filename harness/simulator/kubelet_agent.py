"""The simulated kubelet at work: it watches the pods, runs their containers in the node's
:class:`~harness.simulator.runtime.ContainerRuntime` and reports them, and keeps the Node Ready.

One sync of a pod (``SyncPod`` and the status manager, in one step): exits that are due happen,
containers that never ran are started, exited ones are started again as the restart policy and
CrashLoopBackOff allow, and the status is written if what it reports changed. The pod is synced
again when the next thing in it is due (an exit noticed, a back-off over, a probe passing), and on
every watch event.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from kubernetes.client.exceptions import ApiException

from harness.simulator.apiserver import MERGE_PATCH, NodeApi
from harness.simulator.kubelet import kubelet_action, node_status, pod_status, status_differs
from harness.simulator.lifecycle import (
    CrashLoopBackOff,
    backoff_key,
    next_probe_change,
    restart_decision,
)
from harness.simulator.objects import (
    NODE_HEARTBEAT_SECONDS,
    Obj,
    meta,
    now_utc,
    status_of,
)
from harness.simulator.plumbing import Backoff, Reflector, WorkQueue, is_status
from harness.simulator.runtime import ContainerRuntime

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class KubeletAgent:
    """The kubelet of one node (and the scheduler of a one-node cluster)."""

    def __init__(self, api: NodeApi, runtime: ContainerRuntime, stop: threading.Event) -> None:
        self._api = api
        self._runtime = runtime
        self._stop = stop
        self._lock = threading.Lock()
        self._pods: dict[str, Obj] = {}
        self._pod_ips: dict[str, str] = {}
        self._next_ip = itertools.count(1)
        self._backoff = CrashLoopBackOff()  # used by the one worker thread only
        self._queue = WorkQueue()
        self._reflector = Reflector(
            "pods", api.list_pods, self._on_pods_listed, self._on_pod_event, stop
        )

    def threads(self) -> list[tuple[str, Callable[[], None]]]:
        return [("sim-pod-watch", self._reflector.run), ("sim-kubelet", self._run)]

    def close(self) -> None:
        """Call after setting the stop event."""
        self._queue.close()
        self._reflector.stop()

    def pod_changed(self, pod_uid: str) -> None:
        """Something on the node changed for this pod (a container exited): sync it."""
        self._queue.add(pod_uid)

    # -- pods in, work out -----------------------------------------------------------------------

    def _on_pods_listed(self, items: list[Obj]) -> None:
        with self._lock:
            self._pods = {meta(p)["uid"]: p for p in items}
        for pod in items:
            self._queue.add(meta(pod)["uid"])

    def _on_pod_event(self, kind: str, pod: Obj) -> None:
        uid = meta(pod)["uid"]
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(uid, None)
                self._pod_ips.pop(uid, None)
            else:
                self._pods[uid] = pod
        if kind == "DELETED":
            self._runtime.forget(uid)
            return
        self._queue.add(uid)

    def _run(self) -> None:
        heartbeat_due = 0.0
        node_backoff = Backoff(f"status of node {self._api.node_name}")
        while not self._stop.is_set():
            if time.monotonic() >= heartbeat_due:
                try:
                    node = self._api.read_or_create_node()
                    self._api.patch_node_status(node_status(node, now_utc()))
                    node_backoff.succeeded()
                    heartbeat_due = time.monotonic() + NODE_HEARTBEAT_SECONDS
                except Exception as error:
                    heartbeat_due = time.monotonic() + node_backoff.failed(error)
            uid = self._queue.get(timeout=1.0)
            if uid is None:
                continue
            try:
                self._sync(uid)
            except Exception as error:
                log.debug("kubelet sync of pod %s failed, retrying: %s", uid, error)
                self._queue.add(uid, RETRY_SECONDS)
            finally:
                self._queue.done(uid)

    def _sync(self, uid: str) -> None:
        with self._lock:
            pod = self._pods.get(uid)
        if pod is None:
            return
        action = kubelet_action(pod, self._api.node_name)
        if action == "bind":
            self._api.bind(pod)
            log.debug("bound pod %s/%s", meta(pod)["namespace"], meta(pod)["name"])
        elif action == "delete":
            # Difference: the containers are not stopped first (no grace period, no preStop).
            self._runtime.forget(uid)
            self._backoff.forget_pod(uid)
            self._api.delete_pod_now(pod)
        elif action == "sync":
            wake = self._sync_containers(pod)
            if wake is not None:
                self._queue.add(uid, (wake - now_utc()).total_seconds())

    # -- one pod's containers ----------------------------------------------------------------------

    def _sync_containers(self, pod: Obj) -> datetime | None:
        """Run the pod's containers as its spec says, report them; returns when to look again."""
        uid, spec = meta(pod)["uid"], pod.get("spec") or {}
        now = now_utc()
        for changed in self._runtime.reap(now) - {uid}:
            self._queue.add(changed)
        if not self._runtime.knows(uid) and any(
            s.get("containerID") for s in status_of(pod).get("containerStatuses") or []
        ):
            self._runtime.adopt(pod)  # ran by an earlier simulator
        policy = spec.get("restartPolicy") or "Always"
        instances = self._runtime.containers(uid)
        reported = {s.get("name"): s for s in status_of(pod).get("containerStatuses") or []}
        waiting: dict[str, Obj] = {}
        wake: list[datetime] = []
        for container in spec.get("containers") or []:
            name = container["name"]
            found = instances.get(name) or []
            newest = found[0] if found else None
            key = backoff_key(uid, name)
            decision = restart_decision(
                policy, newest, self._backoff, key, now, pod, reported.get(name)
            )
            if decision.start:
                if newest is not None and newest.finished_at is not None:
                    self._backoff.next(key, newest.finished_at, now)
                restarts = newest.restart_count + 1 if newest is not None else 0
                self._runtime.start(uid, name, container.get("image", ""), restarts, now)
            if decision.waiting is not None:
                waiting[name] = decision.waiting
            if decision.wake_at is not None:
                wake.append(decision.wake_at)

        instances = self._runtime.containers(uid)
        specs = {c["name"]: c for c in spec.get("containers") or []}
        for name, found in instances.items():
            change = next_probe_change(specs.get(name, {}), found[0], now)
            if change is not None:
                wake.append(change)
        pod_ip = status_of(pod).get("podIP") or self._pod_ip(uid)
        status = pod_status(pod, instances, waiting, pod_ip, now)
        if status_differs(status_of(pod), status):
            self._write_status(pod, status)
        return min(wake, default=None)

    def _write_status(self, pod: Obj, status: Obj) -> None:
        body = {"metadata": {"resourceVersion": meta(pod)["resourceVersion"]}, "status": status}
        try:
            self._api.patch_pod_status(pod, body, MERGE_PATCH)
        except ApiException as error:
            if is_status(error, 409):  # the watch brings the newer pod and another sync
                return
            if not is_status(error, 404):
                raise
            return
        if status_of(pod).get("phase") != status["phase"]:
            log.info("pod %s/%s is %s", meta(pod)["namespace"], meta(pod)["name"], status["phase"])

    def _pod_ip(self, uid: str) -> str:
        with self._lock:
            if uid not in self._pod_ips:
                n = next(self._next_ip)
                self._pod_ips[uid] = f"10.244.{n // 250 % 256}.{n % 250 + 2}"
            return self._pod_ips[uid]
