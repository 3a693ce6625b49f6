"""The :class:`Simulator`: the kubelet and kruise-daemon of one node, wired to the apiserver.

The decisions live in :mod:`harness.simulator.kubelet` and :mod:`harness.simulator.daemon`; this
module runs them from list/watch loops and a delaying work queue per half, and makes their writes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from harness.simulator.apiserver import MERGE_PATCH, STRATEGIC_MERGE_PATCH, NodeApi
from harness.simulator.daemon import (
    RuntimeContainer,
    manage_step,
    pick_crr,
    runtime_containers,
    unready_grace_remaining,
)
from harness.simulator.kubelet import (
    kubelet_action,
    node_status,
    readiness_update,
    restarted_container_status,
    running_pod_status,
)
from harness.simulator.objects import (
    COMPLETED,
    CONFLICT_RETRIES,
    DAEMON_POLL_SECONDS,
    DEFAULT_KILL_FAILURE,
    GROUP,
    LABEL_POD_UID,
    NODE_HEARTBEAT_SECONDS,
    PENDING,
    RECREATING,
    Obj,
    crr_group_key,
    crr_phase,
    format_time,
    is_finished,
    meta,
    new_container_id,
    now_utc,
    status_of,
)
from harness.simulator.plumbing import Backoff, Reflector, WorkQueue, is_status

log = logging.getLogger(__name__)


class _Aborted(Exception):
    """The daemon was stopped or taken down while it waited before a write."""


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
        self._api = NodeApi(api_client, node_name)
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
            self._api.list_pods,
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
        node_backoff = Backoff(f"status of node {self.node_name}")
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
            self._api.bind(pod)
            log.debug("bound pod %s/%s", meta(pod)["namespace"], meta(pod)["name"])
        elif action == "delete":
            self._api.delete_pod_now(pod)
        elif action == "start":
            self._start_pod(pod)
        elif action == "conditions":
            self._update_readiness(pod)

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
            self._api.patch_pod_status(pod, body, MERGE_PATCH)
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
            self._api.patch_pod_status(pod, body, STRATEGIC_MERGE_PATCH)
        except ApiException as error:
            if not is_status(error, 404):
                raise

    def _post_node_status(self) -> None:
        node = self._api.read_or_create_node()
        self._api.patch_node_status(node_status(node, now_utc()))

    # -- kruise-daemon half: which pods have active CRRs ----------------------------------------

    def _run_crr_watch(self) -> None:
        backoff = Backoff("discovery of the CRR API version")
        while self._crr_version is None and not self._stop.is_set():
            try:
                self._crr_version = (
                    "v1beta1" if "v1beta1" in self._api.served_crr_versions() else "v1alpha1"
                )
                backoff.succeeded()
            except Exception as error:
                self._stop.wait(backoff.failed(error))
        version = self._crr_version
        if version is None:
            return
        log.info("kruise-daemon simulator uses %s/%s", GROUP, version)
        reflector = Reflector(
            "containerrecreaterequests",
            self._api.list_crrs_call(version),
            self._on_crrs_listed,
            self._on_crr_event,
            self._stop,
            label_selector=self._api.crr_selector,
        )
        with self._lock:
            self._reflectors.append(reflector)
        if not self._stop.is_set():
            reflector.run()

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
        backoff = Backoff("kruise-daemon simulator sync")
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
        picked, to_pending = pick_crr(self._api.list_crrs(self._version(), namespace, pod_name))
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

        pod = self._api.read_pod(namespace, pod_name)
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
            pod = self._api.read_pod(namespace, pod_name)
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
            self._api.patch_pod_status(pod, body, MERGE_PATCH)
        except ApiException as error:
            if is_status(error, 409):
                return False
            raise
        return True

    # -- kruise-daemon half: CRR writes ------------------------------------------------------------

    def _version(self) -> str:
        if self._crr_version is None:
            raise RuntimeError("CRR API version not discovered yet")
        return self._crr_version

    def _update_status(self, crr: Obj, change: Callable[[Obj], Obj | None]) -> None:
        """Read the CRR fresh and write ``change(fresh)`` guarded by its resourceVersion;
        retried on conflict (the daemon's Get + Status().Update under RetryOnConflict)."""
        for _ in range(CONFLICT_RETRIES):
            fresh = self._api.read_crr(self._version(), meta(crr)["namespace"], meta(crr)["name"])
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
                self._api.patch_crr_status(self._version(), fresh, body)
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
        self._api.patch_crr_status(
            self._version(), crr, {"status": {"containerRecreateStates": states}}
        )

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
