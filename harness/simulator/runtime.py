"""The node's container runtime (containerd's CRI, as far as the two agents use it), in memory.

The kubelet half starts containers here and reports them in the pod status; the daemon half
reads them (``GetPodStatus``) and stops them (``StopContainer``), as the real agents both talk to
containerd. A stopped container does not vanish: it stays as the pod's newest container of its
name, exited, until the kubelet starts the next one, and then as the previous one (the kubelet's
garbage collector keeps one dead container per name).

How a simulated container reacts to SIGTERM is chosen per pod by annotations (read when it is
stopped; unparsable values fall back to the defaults):

* ``crr-gateway.test/stop-seconds`` - how long it takes to exit after SIGTERM (default ``0``,
  a well-behaved process);
* ``crr-gateway.test/stop-exit-code`` - its exit code then (default ``143``, 128 + SIGTERM).

If it has not exited when the grace period runs out, the runtime SIGKILLs it: exit code 137.

``crr-gateway.test/fail-kill: "<container>[,<container>]"`` on a pod makes stopping those
containers fail (read at each kill, so removing the annotation ends it), as
:meth:`~harness.simulator.Simulator.fail_kill` does from inside the test process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from harness.simulator.objects import (
    Obj,
    meta,
    new_container_id,
    parse_time,
    status_of,
)

ANNOTATION_STOP_SECONDS = "crr-gateway.test/stop-seconds"
ANNOTATION_STOP_EXIT_CODE = "crr-gateway.test/stop-exit-code"
ANNOTATION_FAIL_KILL = "crr-gateway.test/fail-kill"
INJECTED_KILL_FAILURE = "rpc error: code = Unknown desc = simulated failure to stop container"
SIGTERM_EXIT_CODE = 143
SIGKILL_EXIT_CODE = 137
MINIMUM_GRACE_SECONDS = 2  # kuberuntime's minimumGracePeriodInSeconds
DEFAULT_GRACE_SECONDS = 30  # convertCRRToPod, when the CRR names none
DEAD_CONTAINERS_KEPT = 1  # the kubelet's container GC: MaxPerPodContainer


@dataclass(frozen=True)
class Container:
    """One container the runtime created (a CRI ContainerStatus, as far as we need it)."""

    container_id: str  # with the runtime prefix, as the pod status shows it
    pod_uid: str
    name: str
    image: str
    restart_count: int
    started_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None
    stopping_until: datetime | None = None  # SIGTERM sent; exits at this time
    exit_code_when_stopped: int | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def reason(self) -> str:
        """The CRI's reason for an exited container."""
        return "Completed" if self.exit_code == 0 else "Error"


@dataclass(frozen=True)
class SigtermReaction:
    """What the process in a container does on SIGTERM."""

    exit_after_seconds: float = 0.0
    exit_code: int = SIGTERM_EXIT_CODE


def sigterm_reaction(pod: Obj | None) -> SigtermReaction:
    """The reaction the pod's annotations choose (the defaults for a missing pod or bad values)."""
    annotations = meta(pod or {}).get("annotations") or {}
    reaction = SigtermReaction()
    try:
        seconds = float(annotations.get(ANNOTATION_STOP_SECONDS, reaction.exit_after_seconds))
        if seconds >= 0:
            reaction = replace(reaction, exit_after_seconds=seconds)
    except ValueError:
        pass
    try:
        reaction = replace(
            reaction, exit_code=int(annotations.get(ANNOTATION_STOP_EXIT_CODE, reaction.exit_code))
        )
    except ValueError:
        pass
    return reaction


def injected_kill_failure(pod: Obj | None, name: str) -> str | None:
    """The failure the pod's fail-kill annotation injects into stopping container ``name``."""
    listed = (meta(pod or {}).get("annotations") or {}).get(ANNOTATION_FAIL_KILL) or ""
    names = {part.strip() for part in listed.split(",")}
    return INJECTED_KILL_FAILURE if name in names else None


def grace_seconds(crr: Obj) -> int:
    """KillContainer's grace period for a CRR: its strategy's, else 30 s; never under 2 s.

    Difference: no preStop hook runs, so none of the grace period goes to one.
    """
    strategy = (crr.get("spec") or {}).get("strategy") or {}
    grace = strategy.get("terminationGracePeriodSeconds")
    seconds = DEFAULT_GRACE_SECONDS if grace is None else int(grace)
    return max(seconds, MINIMUM_GRACE_SECONDS)


def stop_outcome(reaction: SigtermReaction, grace: float) -> tuple[float, int]:
    """StopContainer with a timeout: (seconds until the container exits, its exit code)."""
    if reaction.exit_after_seconds < grace:
        return reaction.exit_after_seconds, reaction.exit_code
    return float(grace), SIGKILL_EXIT_CODE


def not_found_error(container_id: str) -> str:
    """containerd's answer to a StopContainer for a container it does not have."""
    raw = container_id.split("://", 1)[-1]
    return (
        f'rpc error: code = NotFound desc = an error occurred when try to find container "{raw}":'
        " not found"
    )


def adopted_containers(pod: Obj) -> list[Container]:
    """The containers a pod's status says exist, for a runtime that has not seen the pod yet.

    A simulator started against pods that an earlier one ran takes them over this way (a real
    kubelet would find them in containerd). Start times have the status's second precision.
    """
    uid = str(meta(pod).get("uid", ""))
    found: list[Container] = []
    for status in status_of(pod).get("containerStatuses") or []:
        name, image = status.get("name", ""), status.get("image", "")
        restarts = int(status.get("restartCount") or 0)
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated")
        if last and last.get("containerID"):
            # the instance before a running one; the newest one of a container that waits
            older = restarts if "waiting" in state else max(restarts - 1, 0)
            found.append(_exited(uid, name, image, older, last))
        if state.get("running") is not None and status.get("containerID"):
            started = parse_time(state["running"].get("startedAt"))
            if started is not None:
                found.append(
                    Container(str(status["containerID"]), uid, name, image, restarts, started)
                )
        elif (state.get("terminated") or {}).get("containerID"):
            found.append(_exited(uid, name, image, restarts, state["terminated"]))
    return found


def _exited(uid: str, name: str, image: str, restarts: int, terminated: Obj) -> Container:
    finished = parse_time(terminated.get("finishedAt"))
    started = parse_time(terminated.get("startedAt")) or finished
    assert started is not None and finished is not None, terminated
    return Container(
        str(terminated["containerID"]),
        uid,
        name,
        image,
        restarts,
        started,
        finished_at=finished,
        exit_code=int(terminated.get("exitCode") or 0),
    )


class ContainerRuntime:
    """The node's containers by pod UID, oldest first; safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[str, list[Container]] = {}

    def knows(self, pod_uid: str) -> bool:
        with self._lock:
            return pod_uid in self._pods

    def adopt(self, pod: Obj) -> None:
        with self._lock:
            self._pods.setdefault(str(meta(pod).get("uid", "")), adopted_containers(pod))

    def forget(self, pod_uid: str) -> None:
        """The pod is gone: so are its containers."""
        with self._lock:
            self._pods.pop(pod_uid, None)

    def containers(self, pod_uid: str) -> dict[str, list[Container]]:
        """Each container name's containers, newest first (``GetPodStatus``)."""
        with self._lock:
            by_name: dict[str, list[Container]] = {}
            for container in reversed(self._pods.get(pod_uid, [])):
                by_name.setdefault(container.name, []).append(container)
            return by_name

    def start(
        self, pod_uid: str, name: str, image: str, restart_count: int, now: datetime
    ) -> Container:
        """Create and start a container; older dead ones of the name beyond the GC's keep go."""
        started = Container(new_container_id(), pod_uid, name, image, restart_count, now)
        with self._lock:
            containers = self._pods.setdefault(pod_uid, [])
            dead = [c for c in containers if c.name == name and not c.running]
            for old in dead[: max(len(dead) - DEAD_CONTAINERS_KEPT, 0)]:
                containers.remove(old)
            containers.append(started)
        return started

    def stop(
        self, container_id: str, grace: float, reaction: SigtermReaction, now: datetime
    ) -> tuple[Container | None, str | None]:
        """StopContainer, first half: send SIGTERM. Returns (the container, None) with the time it
        will exit in ``stopping_until``, or (None, error) when the runtime has no such container.

        A container that has already exited stays as it is (containerd answers success).
        The caller waits until ``stopping_until`` and then calls :meth:`reap`.
        """
        with self._lock:
            for pod in self._pods.values():
                for index, container in enumerate(pod):
                    if container.container_id != container_id:
                        continue
                    if not container.running or container.stopping_until is not None:
                        return container, None
                    seconds, code = stop_outcome(reaction, grace)
                    stopping = replace(
                        container,
                        stopping_until=now + timedelta(seconds=seconds),
                        exit_code_when_stopped=code,
                    )
                    pod[index] = stopping
                    return stopping, None
        return None, not_found_error(container_id)

    def reap(self, now: datetime) -> set[str]:
        """Containers whose stop is due exit now; returns the UIDs of the pods that changed."""
        changed: set[str] = set()
        with self._lock:
            for uid, pod in self._pods.items():
                for index, container in enumerate(pod):
                    due = container.stopping_until
                    if container.running and due is not None and due <= now:
                        pod[index] = replace(
                            container,
                            finished_at=due,
                            exit_code=container.exit_code_when_stopped,
                        )
                        changed.add(uid)
        return changed

    def next_exit(self) -> datetime | None:
        """When the next stopping container exits, if any does."""
        with self._lock:
            due = [
                c.stopping_until
                for pod in self._pods.values()
                for c in pod
                if c.running and c.stopping_until is not None
            ]
        return min(due, default=None)
