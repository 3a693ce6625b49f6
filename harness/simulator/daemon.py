"""The kruise-daemon's CRR decisions (``pkg/daemon/containerrecreate`` in kruise v1.9.0), pure.

Each function mirrors the Go function it is named after and works on plain dicts and the
runtime's :class:`~harness.simulator.runtime.Container` records, so the unit tests check them
without a cluster. The v1alpha1 container snapshot (an annotation) is still read for the
simulator's v1alpha1 opt-in; kruise v1.9.0's daemon reads the v1beta1 field only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from harness.simulator.objects import (
    ANNOTATION_SYNC_STATUSES,
    ANNOTATION_UNREADY_ACQUIRED,
    COMPLETED,
    CONDITION_PRE_RECREATE_GRACE,
    FAILED,
    PENDING,
    RECREATING,
    RUNTIME,
    SUCCEEDED,
    Obj,
    crr_phase,
    is_finished,
    meta,
    parse_time,
    status_of,
    strategy_of,
)
from harness.simulator.runtime import Container

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


def choose_crr_version(served: set[str], usable: tuple[str, ...]) -> str | None:
    """The CRR version the daemon works with: the first of ``usable`` the cluster serves.

    The real daemon's informer knows v1beta1 only (``usable`` is then ``("v1beta1",)``): where
    that is not served, its list fails, its cache never syncs and it does nothing.
    """
    return next((version for version in usable if version in served), None)


def newest_containers(containers: dict[str, list[Container]]) -> dict[str, Container]:
    """FindContainerStatusByName for every name: the newest container of each."""
    return {name: instances[0] for name, instances in containers.items() if instances}


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


def current_recreate_states(crr: Obj, containers: dict[str, Container], now: datetime) -> list[Obj]:
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


def manage_step(crr: Obj, containers: dict[str, Container], now: datetime, kill: KillFn) -> Step:
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
