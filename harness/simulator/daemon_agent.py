"""The simulated kruise-daemon at work: it watches the node's active CRRs and runs ``sync`` for
each pod that has one, with 32 workers and a per-pod retry back-off, as the real daemon's
controller does; kills go to the node's :class:`~harness.simulator.runtime.ContainerRuntime`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable

from harness.simulator.apiserver import NodeApi
from harness.simulator.daemon import (
    choose_crr_version,
    manage_step,
    newest_containers,
    pick_crr,
    unready_grace_remaining,
)
from harness.simulator.objects import (
    COMPLETED,
    CONFLICT_RETRIES,
    DAEMON_POLL_SECONDS,
    DAEMON_WORKERS,
    GROUP,
    LABEL_POD_UID,
    PENDING,
    RECREATING,
    Obj,
    crr_group_key,
    crr_phase,
    format_time,
    is_finished,
    meta,
    now_utc,
)
from harness.simulator.plumbing import Backoff, RateLimiter, Reflector, WorkQueue, is_status
from harness.simulator.runtime import (
    ContainerRuntime,
    grace_seconds,
    injected_kill_failure,
    sigterm_reaction,
)

log = logging.getLogger(__name__)

DISCOVERY_RETRY_SECONDS = 2.0
RETRY_BASE_SECONDS = 0.5  # the daemon's queue: 500 ms doubling ...
RETRY_LIMIT_SECONDS = 50.0  # ... up to 50 s plus up to 5 s picked once at start


class _Aborted(Exception):
    """The daemon was stopped or taken down while it waited before a write."""


class DaemonAgent:
    """The CRR controller of kruise-daemon on one node.

    Failure injection: :meth:`fail_kill`, ``slow_seconds`` (wait that long before each write and
    kill), ``daemon_down`` (write nothing; the kubelet keeps running).
    """

    def __init__(
        self,
        api: NodeApi,
        runtime: ContainerRuntime,
        stop: threading.Event,
        pod_changed: Callable[[str], None],
        crr_versions: tuple[str, ...],
    ) -> None:
        self.slow_seconds = 0.0
        self.daemon_down = False
        self.served_crr_versions: set[str] | None = None
        self._api = api
        self._runtime = runtime
        self._stop = stop
        self._pod_changed = pod_changed
        self._usable_versions = crr_versions
        self._lock = threading.Lock()
        self._active_crrs: dict[tuple[str, str], str] = {}  # (namespace, name) -> pod key
        self._kill_failures: dict[tuple[str, str, str], str] = {}
        self._queue = WorkQueue()
        self._retries = RateLimiter(RETRY_BASE_SECONDS, RETRY_LIMIT_SECONDS + random.uniform(0, 5))
        self._reflector: Reflector | None = None
        self.crr_version: str | None = None

    def threads(self) -> list[tuple[str, Callable[[], None]]]:
        workers = [(f"sim-daemon-{n}", self._work) for n in range(DAEMON_WORKERS)]
        return [("sim-crr-watch", self._run_crr_watch), ("sim-daemon-poll", self._poll), *workers]

    def close(self) -> None:
        """Call after setting the stop event."""
        self._queue.close()
        with self._lock:
            reflector = self._reflector
        if reflector is not None:
            reflector.stop()

    def fail_kill(self, namespace: str, pod: str, container: str, message: str) -> None:
        with self._lock:
            self._kill_failures[(namespace, pod, container)] = message

    def reset(self) -> None:
        with self._lock:
            self._kill_failures.clear()
        self.slow_seconds = 0.0
        self.daemon_down = False

    # -- which pods have active CRRs -------------------------------------------------------------

    def _run_crr_watch(self) -> None:
        backoff = Backoff("discovery of the CRR API version")
        version = None
        while version is None and not self._stop.is_set():
            try:
                self.served_crr_versions = self._api.served_crr_versions()
                backoff.succeeded()
            except Exception as error:
                self._stop.wait(backoff.failed(error))
                continue
            version = choose_crr_version(self.served_crr_versions, self._usable_versions)
            if version is None:
                log.debug("no CRR version of %s served; the daemon waits", self._usable_versions)
                self._stop.wait(DISCOVERY_RETRY_SECONDS)
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
            self._reflector = reflector
            self.crr_version = version
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
            self._queue.add(pod_key)

    def _on_crr_event(self, kind: str, crr: Obj) -> None:
        key = (meta(crr)["namespace"], meta(crr)["name"])
        with self._lock:
            if kind == "DELETED" or is_finished(crr):
                self._active_crrs.pop(key, None)
                return
            self._active_crrs[key] = crr_group_key(crr)
        self._queue.add(crr_group_key(crr))

    def _poll(self) -> None:
        """Difference: every active pod key is synced each second on top of the watch events
        (a key skipped while the daemon was down comes back); keys in retry back-off wait."""
        while not self._stop.wait(DAEMON_POLL_SECONDS):
            with self._lock:
                pod_keys = set(self._active_crrs.values())
            for pod_key in pod_keys:
                if self._retries.failures(pod_key) == 0:
                    self._queue.add(pod_key)

    # -- sync ----------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            key = self._queue.get(timeout=DAEMON_POLL_SECONDS)
            if key is None:
                continue
            try:
                if self.daemon_down:
                    continue
                requeue = self._sync_crrs(key)
                self._retries.forget(key)
                if requeue is not None:
                    self._queue.add(key, requeue)
            except _Aborted:
                pass
            except Exception as error:
                delay = self._retries.when(key)
                level = logging.WARNING if self._retries.failures(key) == 1 else logging.DEBUG
                log.log(level, "sync of %s failed, retrying in %.1fs: %s", key, delay, error)
                self._queue.add(key, delay)
            finally:
                self._queue.done(key)

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

        pod_uid = (meta(crr).get("labels") or {}).get(LABEL_POD_UID, "")
        containers = newest_containers(self._runtime.containers(pod_uid))

        def kill(name: str, container_id: str) -> str | None:
            return self._kill(crr, name, container_id)

        step = manage_step(crr, containers, now_utc(), kill)
        if step.patch_states is not None:
            self._patch_states(crr, step.patch_states)
        elif step.complete_message is not None:
            self._complete(crr, step.complete_message)
        return step.requeue_after

    def _before_write(self) -> None:
        """Slow mode waits here; a daemon taken down (or stopped) meanwhile writes nothing."""
        if self.slow_seconds > 0:
            self._stop.wait(self.slow_seconds)
        if self.daemon_down or self._stop.is_set():
            raise _Aborted

    def _kill(self, crr: Obj, name: str, container_id: str) -> str | None:
        """KillContainer: StopContainer with the CRR's grace period, which returns once the
        container has exited (SIGTERM, then SIGKILL when the grace period runs out).

        Differences: no preStop hook runs and no Killing event is recorded. The pod is read for
        the test annotations (how the container reacts to SIGTERM, injected failures).
        """
        self._before_write()
        namespace, pod_name = meta(crr)["namespace"], crr["spec"]["podName"]
        pod = self._api.read_pod(namespace, pod_name)
        with self._lock:
            failure = self._kill_failures.get((namespace, pod_name, name))
        failure = failure or injected_kill_failure(pod, name)
        if failure is not None:
            log.info("kill of %s/%s/%s fails (injected): %s", namespace, pod_name, name, failure)
            return failure
        reaction = sigterm_reaction(pod)
        stopping, error = self._runtime.stop(container_id, grace_seconds(crr), reaction, now_utc())
        if stopping is None:
            return error
        if stopping.stopping_until is not None:
            wait = (stopping.stopping_until - now_utc()).total_seconds()
            if wait > 0 and self._stop.wait(wait):
                raise _Aborted
            self._runtime.reap(now_utc())
        self._pod_changed(stopping.pod_uid)
        log.info("killed container %s of pod %s/%s", name, namespace, pod_name)
        return None

    # -- CRR writes ------------------------------------------------------------------------------

    def _version(self) -> str:
        if self.crr_version is None:
            raise RuntimeError("CRR API version not discovered yet")
        return self.crr_version

    def _update_status(self, crr: Obj, change: Callable[[Obj], Obj | None]) -> None:
        """Read the CRR fresh and write ``change(fresh)`` guarded by its resourceVersion;
        retried on conflict (the daemon's Get + Status().Update under RetryOnConflict)."""
        namespace, name = meta(crr)["namespace"], meta(crr)["name"]
        for _ in range(CONFLICT_RETRIES):
            fresh = self._api.read_crr(self._version(), namespace, name)
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
            except Exception as error:
                if not is_status(error, 409):
                    raise
        raise RuntimeError(f"conflicts writing CRR {namespace}/{name}")

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
