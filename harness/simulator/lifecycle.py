"""The kubelet's decisions about one container's life, pure: when to start it again, how long
CrashLoopBackOff holds it, when its probes would pass, and the status that reports it.

Read against Kubernetes v1.32: ``ShouldContainerBeRestarted`` (kubelet/container/helpers.go),
``doBackOff`` (kuberuntime_manager.go) over client-go's ``flowcontrol.Backoff`` as kubelet.go
configures it, the prober's ``worker.doProbe`` and ``isContainerStarted``, and
``convertToAPIContainerStatuses`` (kubelet_pods.go).

Simulated probes always succeed; what a pod spec chooses is *when* they first run: a probe runs
every ``periodSeconds`` counted from the container's start and is skipped while the container is
younger than ``initialDelaySeconds``; the readiness probe only runs once the container has
started (its startup probe passed). Difference: the real prober's ticks are counted from when its
worker began (with random jitter) and a status sync can trigger an extra readiness probe, so a
real container can become ready up to one period earlier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from harness.simulator.objects import Obj, format_time
from harness.simulator.runtime import Container

EXIT_NOTICE_SECONDS = 0.5
"""How long after an exit the kubelet acts on it: PLEG relists every second; we take the mean."""

REPORT_FIRST_SECONDS = 0.1
"""How soon to look again when an exit must be reported before the restart (the write's own
watch event usually comes first)."""

CRASH_LOOP_INITIAL = 10.0  # containerBackOffPeriod
CRASH_LOOP_MAX = 300.0  # MaxContainerBackOff
CRASH_LOOP_RESET = 600.0  # kubelet.go's HasExpiredFunc: ten minutes without an exit
PROBE_PERIOD_DEFAULT = 10


def _probe_passes_at(probe: Obj | None, started: datetime, not_before: datetime) -> datetime:
    """The first tick of ``probe`` (ticks at ``started`` + k * periodSeconds) at which the
    container is at least ``initialDelaySeconds`` old and that is not before ``not_before``,
    plus the further ticks ``successThreshold`` asks for."""
    if probe is None:
        return not_before
    period = float(probe.get("periodSeconds") or PROBE_PERIOD_DEFAULT)
    delay = float(probe.get("initialDelaySeconds") or 0)
    first = max(delay, (not_before - started).total_seconds())
    tick = math.ceil(first / period - 1e-9)
    tick += max(int(probe.get("successThreshold") or 1), 1) - 1
    return started + timedelta(seconds=tick * period)


def started_at(spec: Obj, container: Container) -> datetime:
    """When the kubelet reports the container started: at once, or when its startup probe passes."""
    return _probe_passes_at(spec.get("startupProbe"), container.started_at, container.started_at)


def ready_at(spec: Obj, container: Container) -> datetime:
    """When the kubelet reports the container ready: once started and its readiness probe passed."""
    started = started_at(spec, container)
    return _probe_passes_at(spec.get("readinessProbe"), container.started_at, started)


def should_restart(restart_policy: str, container: Container) -> bool:
    """ShouldContainerBeRestarted for an exited container."""
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return container.exit_code != 0
    return True


@dataclass
class _Entry:
    backoff: float
    last_update: datetime


@dataclass
class CrashLoopBackOff:
    """flowcontrol.Backoff as the kubelet sets it up: per container, 10 s doubling to 300 s,
    forgotten after ten minutes without an exit. ``now`` is always given (no clock inside)."""

    initial: float = CRASH_LOOP_INITIAL
    limit: float = CRASH_LOOP_MAX
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def _expired(self, entry: _Entry, event_time: datetime) -> bool:
        return (event_time - entry.last_update).total_seconds() > CRASH_LOOP_RESET

    def remaining(self, key: str, finished: datetime, now: datetime) -> float:
        """IsInBackOffSince: seconds the container must still wait after exiting at ``finished``
        (0 when it may start)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, finished):
            return 0.0
        return max(entry.backoff - (now - finished).total_seconds(), 0.0)

    def current(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.backoff if entry is not None else 0.0

    def next(self, key: str, finished: datetime, now: datetime) -> None:
        """Next: the restart happens now; the following one waits twice as long."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, finished):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.backoff = min(entry.backoff * 2, self.limit)
            entry.last_update = now

    def forget_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._entries if k.startswith(f"{pod_uid}/")]:
            del self._entries[key]


def backoff_key(pod_uid: str, name: str) -> str:
    return f"{pod_uid}/{name}"


def crash_loop_message(delay: float, name: str, pod: Obj) -> str:
    """doBackOff's error text: ``back-off 10s restarting failed container=app pod=web_ns(uid)``."""
    metadata = pod.get("metadata") or {}
    who = f"{metadata.get('name')}_{metadata.get('namespace')}({metadata.get('uid')})"
    return f"back-off {_go_duration(delay)} restarting failed container={name} pod={who}"


def _go_duration(seconds: float) -> str:
    """time.Duration's String for whole seconds: 10s, 1m20s, 5m0s."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    return f"{whole // 60}m{whole % 60}s"


@dataclass(frozen=True)
class Restart:
    """What the kubelet does about a container's newest instance at ``now``."""

    start: bool = False  # start a new instance now
    wake_at: datetime | None = None  # look again then
    waiting: Obj | None = None  # the Waiting state to report meanwhile


def restart_decision(
    restart_policy: str,
    newest: Container | None,
    backoff: CrashLoopBackOff,
    key: str,
    now: datetime,
    pod: Obj,
    reported: Obj | None,
) -> Restart:
    """SyncPod's computePodActions + doBackOff for one container name; ``reported`` is the
    container's status as the pod shows it now.

    SyncPod writes the status it found (the exit) before it starts the next container, so the
    exit is always reported once: a container is started again only after that write.
    """
    if newest is None:
        return Restart(start=True)  # never started (or every instance was collected)
    if newest.running:
        return Restart(wake_at=newest.stopping_until)
    assert newest.finished_at is not None
    if not should_restart(restart_policy, newest):
        return Restart()
    noticed = newest.finished_at + timedelta(seconds=EXIT_NOTICE_SECONDS)
    if now < noticed:
        return Restart(wake_at=noticed)
    if not reports_exit(reported, newest):
        return Restart(wake_at=now + timedelta(seconds=REPORT_FIRST_SECONDS))
    wait = backoff.remaining(key, newest.finished_at, now)
    if wait > 0:
        return Restart(
            wake_at=now + timedelta(seconds=wait),
            waiting={
                "reason": "CrashLoopBackOff",
                "message": crash_loop_message(backoff.current(key), newest.name, pod),
            },
        )
    return Restart(start=True)


def reports_exit(reported: Obj | None, container: Container) -> bool:
    """Whether a container status already shows ``container`` as exited."""
    if reported is None:
        return False
    for state in (reported.get("state") or {}, reported.get("lastState") or {}):
        if (state.get("terminated") or {}).get("containerID") == container.container_id:
            return True
    return False


def reports_started(reported: Obj | None, container: Container) -> bool:
    """Whether a container status already shows ``container`` as started."""
    return bool(
        reported is not None
        and reported.get("containerID") == container.container_id
        and reported.get("started")
    )


def _terminated(container: Container) -> Obj:
    assert container.finished_at is not None
    return {
        "exitCode": container.exit_code,
        "reason": container.reason,
        "startedAt": format_time(container.started_at),
        "finishedAt": format_time(container.finished_at),
        "containerID": container.container_id,
    }


def container_status(
    spec: Obj,
    instances: list[Container],
    image_id: str,
    waiting: Obj | None,
    now: datetime,
    reported: Obj | None = None,
) -> Obj:
    """convertToAPIContainerStatuses (+ the prober's started/ready) for one container name;
    ``instances`` newest first (the newest and the one before it are reported); ``reported`` is
    the container's status as the pod shows it now.

    A readiness probe runs only once the status manager holds the container as started, so a
    container with one is reported started (and not ready) at least once before it is ready.
    """
    newest = instances[0]
    status: Obj = {
        "name": newest.name,
        "image": newest.image,
        "imageID": image_id,
        "containerID": newest.container_id,
        "restartCount": newest.restart_count,
        "started": False,
        "ready": False,
        "lastState": {},
    }
    if newest.running:
        status["state"] = {"running": {"startedAt": format_time(newest.started_at)}}
        status["started"] = now >= started_at(spec, newest)
        if spec.get("readinessProbe") is None:
            status["ready"] = status["started"]
        else:
            status["ready"] = reports_started(reported, newest) and now >= ready_at(spec, newest)
        if len(instances) > 1 and not instances[1].running:
            status["lastState"] = {"terminated": _terminated(instances[1])}
    elif waiting is not None:
        status["state"] = {"waiting": waiting}
        status["lastState"] = {"terminated": _terminated(newest)}
    else:
        status["state"] = {"terminated": _terminated(newest)}
        if len(instances) > 1 and not instances[1].running:
            status["lastState"] = {"terminated": _terminated(instances[1])}
    return status


def next_probe_change(spec: Obj, container: Container, now: datetime) -> datetime | None:
    """When the reported started/ready of a running container changes next, if it still will."""
    if not container.running:
        return None
    upcoming = [t for t in (started_at(spec, container), ready_at(spec, container)) if t > now]
    return min(upcoming, default=None)
