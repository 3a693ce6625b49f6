"""One step of a rollout's controller, pure: given the rollout object, the pods and restarts
the caches hold and ``now``, what to write next (docs/rollouts.md).

A rollout is a ``RestartRollout`` object (``deploy/crds/restartrollouts.yaml``): ``spec.pods`` is
the plan fixed at creation, ``status.pods`` the state of each. :func:`decide` answers the next
status, the pods to start and the restarts to delete; the controller writes it with a
resourceVersion precondition, so two replicas never act on the same state twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from service.core.objects import KubeObject
from service.core.pods import Pod, format_time, parse_time
from service.core.schemas import Restart
from service.core.selection import DisruptionBudget

GROUP = "crr-gateway.io"
VERSION = "v1alpha1"
KIND = "RestartRollout"
PLURAL = "restartrollouts"
API_VERSION = f"{GROUP}/{VERSION}"

ROLLOUT_LABEL = "crr-gateway.io/rollout"  # on every CRR a rollout creates

PodState = Literal["Waiting", "Restarting", "Succeeded", "Failed", "Skipped", "Gone"]
RolloutPhase = Literal["Progressing", "Paused", "Succeeded", "Failed", "Cancelled"]
POD_STATES: tuple[PodState, ...] = (
    "Waiting",
    "Restarting",
    "Succeeded",
    "Failed",
    "Skipped",
    "Gone",
)
FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})


def restart_name(rollout: str, pod: str, uid: str) -> str:
    """The name of the CRR a rollout makes for one pod: derived from (rollout, pod), so a
    repeated create (a crash, a second replica) meets AlreadyExists instead of restarting
    the pod twice. At most 63 characters, so it is also a valid restart name in our API."""
    digest = hashlib.sha256(f"{pod}\0{uid}".encode()).hexdigest()[:10]
    return f"{rollout[:52].rstrip('-.')}-{digest}"


@dataclass(slots=True)
class Step:
    """What one reconcile decided: the new status (``changed`` when it differs), the pods to
    start (already marked Restarting in ``status``), the restarts to delete (cancelled before
    they started; only at the version seen, so one kruise started since stays), the restarts
    to look up because the cache does not have them, and whether to pause (a failure with
    pauseOnFailure)."""

    status: KubeObject
    changed: bool
    start: list[str] = field(default_factory=list)
    delete_restarts: list[tuple[str, str]] = field(default_factory=list)  # (name, version)
    missing_restarts: list[str] = field(default_factory=list)
    pause: bool = False
    finished: bool = False


def _entries(rollout: KubeObject) -> list[dict[str, Any]]:
    """status.pods, seeded from the plan on the first step."""
    spec = rollout.get("spec") or {}
    status = rollout.get("status") or {}
    known = {p["name"]: dict(p) for p in status.get("pods") or [] if isinstance(p, dict)}
    entries = [
        known.pop(p["name"], {"name": p["name"], "uid": p["uid"], "state": "Waiting"})
        for p in spec.get("pods") or []
    ]
    entries.extend(known.values())  # pods listed as Skipped after the plan was made
    return entries


def counts(entries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    tally: dict[str, int] = dict.fromkeys(POD_STATES, 0)
    for entry in entries:
        tally[entry["state"]] = tally.get(entry["state"], 0) + 1
    return tally


def _available_again(entry: Mapping[str, Any], pod: Pod, min_ready: int, now: datetime) -> bool:
    """A pod this rollout restarted counts as available once it is Ready with its new
    containers (the pod cache has caught up with the restart) for ``minReadySeconds``."""
    if not pod.ready:
        return False
    if entry["state"] == "Succeeded":
        before = entry.get("containerIDs") or {}
        now_ids = pod.container_ids(before)
        if before and any(now_ids.get(c) == cid for c, cid in before.items()):
            return False
    since = max(
        (t for t in (pod.ready_since(), parse_time(entry.get("finishedAt"))) if t is not None),
        default=None,
    )
    return since is None or now >= since + timedelta(seconds=min_ready)


def decide(
    rollout: KubeObject,
    members: Sequence[Pod],
    restarts: Mapping[str, Restart],
    budgets: Sequence[DisruptionBudget],
    namespace_pods: Sequence[Pod],
    now: datetime,
    busy: Mapping[str, str] | None = None,
) -> Step:
    """One reconcile of ``rollout``.

    ``members``: the pods its ``podSelector`` matches now (from the pod cache);
    ``restarts``: the restarts of this rollout the CRR cache holds, by name;
    ``budgets``: the disruption budgets of the namespace; ``namespace_pods``: the pods they
    count over; ``busy``: pods with an active restart not made by this rollout (kruise runs one
    per pod at a time), by pod name, with that restart's name.
    """
    spec = rollout.get("spec") or {}
    old_status = rollout.get("status") or {}
    entries = _entries(rollout)
    members = [p for p in members if _belongs(spec, p)]
    by_name = {p.name: p for p in members}
    planned = {e["name"] for e in entries}
    resolved = int(spec.get("resolvedMaxUnavailable") or 1)
    min_ready = int(spec.get("minReadySeconds") or 0)
    cancelled = bool(spec.get("cancelled"))
    paused = bool(spec.get("paused"))
    step = Step(status={}, changed=False)
    failures: list[str] = []

    # 1. what happened since the last step
    for entry in entries:
        pod = by_name.get(entry["name"])
        alive = pod is not None and pod.uid == entry.get("uid")
        state = entry["state"]
        if state == "Waiting":
            if not alive:
                entry["state"] = "Gone"
                entry["message"] = (
                    "the pod was deleted before its turn"
                    if pod is None
                    else "the pod was replaced by a new one of the same name; it is not restarted"
                )
            elif cancelled:
                entry["state"] = "Skipped"
                entry["message"] = "the rollout was cancelled"
        elif state == "Restarting":
            restart = restarts.get(entry.get("restart", ""))
            if restart is None:
                step.missing_restarts.append(entry["name"])
            elif restart.finished:
                entry["finishedAt"] = format_time(restart.completedAt or now)
                if cancelled and restart.failureReason == "Deleted":
                    entry["state"] = "Skipped"
                    entry["message"] = "the rollout was cancelled before this restart started"
                elif restart.failureReason == "PodGone" or not alive:
                    entry["state"] = "Gone"
                    entry["message"] = "the pod was deleted during its restart"
                elif restart.result == "Succeeded":
                    entry["state"] = "Succeeded"
                    entry["message"] = ""
                else:
                    entry["state"] = "Failed"
                    entry["message"] = restart.message or restart.failureReason or "failed"
                    failures.append(entry["name"])
            elif cancelled and restart.phase == "Pending" and not _killed(restart):
                # it stays Restarting until the deletion is seen: a crash in between must not
                # leave a pod called Skipped whose restart still runs
                step.delete_restarts.append((restart.name, restart.resourceVersion))

    # pods that joined the rollout's pods after it began are listed, never restarted
    for pod in members:
        if pod.name not in planned:
            entries.append(
                {
                    "name": pod.name,
                    "uid": pod.uid,
                    "state": "Skipped",
                    "message": "the pod was created after the rollout began",
                }
            )
            planned.add(pod.name)

    # 2. the budget: selected pods not available now, restarts under way included
    unavailable: set[str] = set()
    waiting_for: list[str] = []
    entry_of = {e["name"]: e for e in entries}
    for pod in members:
        name = pod.name
        own = entry_of.get(name)
        if own is not None and own.get("uid") != pod.uid:
            own = None  # a newer pod of the same name: not the one the plan holds
        if own is not None and own["state"] == "Restarting":
            unavailable.add(name)
        elif own is not None and own["state"] in ("Succeeded", "Failed"):
            if not _available_again(own, pod, min_ready, now):
                unavailable.add(name)
                waiting_for.append(name)
        elif not pod.ready:
            unavailable.add(name)
    for entry in entries:  # a restart of a pod gone from the cache still holds its place
        if entry["state"] == "Restarting" and entry["name"] not in by_name:
            unavailable.add(entry["name"])

    # 3. start what the budget allows, in plan order, unready pods first
    pause = bool(failures) and bool(spec.get("pauseOnFailure", True)) and not cancelled
    message = ""
    if not (cancelled or paused or pause):
        waiting = [e for e in entries if e["state"] == "Waiting"]
        waiting.sort(key=lambda e: 0 if e["name"] in unavailable else 1)  # stable: plan order
        restarting = sum(1 for e in entries if e["state"] == "Restarting")
        allowances = {b.name: b.allowance(namespace_pods, unavailable) for b in budgets}
        for entry in waiting:
            pod = by_name[entry["name"]]
            if busy and entry["name"] in busy:
                message = (
                    f"pod {entry['name']} waits for its restart {busy[entry['name']]} "
                    "(not made by this rollout) to finish"
                )
                continue
            if entry["name"] in unavailable:
                if restarting >= resolved:
                    message = f"waiting: {restarting} restarts under way, at most {resolved}"
                    break
            else:
                if len(unavailable) >= resolved:
                    message = _budget_message(unavailable, entries, waiting_for, resolved)
                    break
                blocking = [b for b in budgets if b.selects(pod) and allowances[b.name] < 1]
                if blocking:
                    b = blocking[0]
                    message = (
                        f"waiting: {b.kind} {b.name} allows no more unavailable pods now "
                        f"(pod {entry['name']} is next)"
                    )
                    break
                for b in budgets:
                    if b.selects(pod):
                        allowances[b.name] -= 1
                unavailable.add(entry["name"])
            restarting += 1
            entry["state"] = "Restarting"
            entry["restart"] = restart_name(
                str((rollout.get("metadata") or {}).get("name", "")), entry["name"], entry["uid"]
            )
            entry["claimedAt"] = format_time(now)
            entry["containerIDs"] = pod.container_ids(spec.get("containers"))
            entry["message"] = ""
            step.start.append(entry["name"])

    # 4. the phase
    tally = counts(entries)
    open_work = tally["Waiting"] + tally["Restarting"]
    phase: RolloutPhase
    completion = old_status.get("completionTime")
    if old_status.get("phase") in FINISHED_PHASES:
        phase = old_status["phase"]
        message = old_status.get("message", "")
    elif open_work == 0 and not waiting_for:
        if cancelled:
            phase = "Cancelled"
            message = "cancelled"
        elif tally["Failed"]:
            phase = "Failed"
            failed = [e["name"] for e in entries if e["state"] == "Failed"]
            message = f"restarts failed on {len(failed)} pod(s): {', '.join(failed)}"
        else:
            phase = "Succeeded"
            message = ""
        completion = completion or format_time(now)
    elif cancelled:
        phase = "Progressing"
        message = f"cancelling: waiting for {tally['Restarting']} restarts under way to finish"
    elif pause or paused:
        phase = "Paused"
        if pause:
            failed_entry = entry_of[failures[0]]
            message = (
                f"paused: the restart of pod {failed_entry['name']} failed: "
                f"{failed_entry.get('message', '')}"
            )
        elif old_status.get("phase") == "Paused" and old_status.get("message"):
            message = old_status["message"]
        else:
            message = "paused"
    else:
        phase = "Progressing"
        if not message and waiting_for and not step.start:
            message = f"waiting for pod {waiting_for[0]} to be available again"

    done = sum(tally[s] for s in ("Succeeded", "Failed", "Skipped", "Gone"))
    status: KubeObject = {
        "phase": phase,
        "message": message,
        "progress": f"{done}/{len(entries)}",
        "targetDescription": old_status.get("targetDescription") or describe_target(spec),
        "unavailable": len(unavailable),
        "pods": entries,
    }
    if completion:
        status["completionTime"] = completion
    step.status = status
    step.changed = status != old_status
    step.pause = pause
    step.finished = phase in FINISHED_PHASES
    return step


def _belongs(spec: Mapping[str, Any], pod: Pod) -> bool:
    """Whether a pod the rollout's selector matches is one of its pods: for a selector, every
    one; for a workload, those it controls (a Deployment, through its ReplicaSets). A pod the
    selector matches but the workload does not own (a debug copy, another owner's) is neither
    listed nor counted against the budget."""
    target = spec.get("target")
    if not isinstance(target, dict):
        return True
    owner = pod.controller
    if owner is None:
        return False
    if target.get("kind") == "Deployment":
        return owner.kind == "ReplicaSet"
    return owner.uid == target.get("uid")


def _killed(restart: Restart) -> bool:
    return any(s.isKilled for s in restart.containerStates)


def _budget_message(
    unavailable: set[str],
    entries: Sequence[Mapping[str, Any]],
    waiting_for: Sequence[str],
    max_: int,
) -> str:
    restarting = sorted(e["name"] for e in entries if e["state"] == "Restarting")
    ours = {e["name"] for e in entries if e["state"] in ("Restarting", "Succeeded", "Failed")}
    outside = sorted(unavailable - ours)
    parts = [f"waiting: {len(unavailable)} of at most {max_} selected pods unavailable"]
    if restarting:
        parts.append(f"restarting: {_names(restarting)}")
    if waiting_for:
        parts.append(f"waiting for pod {_names(sorted(waiting_for))} to be available again")
    if outside:
        parts.append(f"not restarted by this rollout: {_names(outside)}")
    return "; ".join(parts)


def _names(names: Sequence[str], most: int = 5) -> str:
    text = ", ".join(names[:most])
    return text + (f" and {len(names) - most} more" if len(names) > most else "")


def describe_target(spec: Mapping[str, Any]) -> str:
    target = spec.get("target")
    if isinstance(target, dict):
        return f"{target.get('kind')}/{target.get('name')}"
    selector = spec.get("selector") or {}
    labels = ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    return f"selector {labels}" if labels else "selector"


def is_finished(rollout: KubeObject) -> bool:
    return (rollout.get("status") or {}).get("phase") in FINISHED_PHASES


def overlapping(
    plan_uids: Iterable[str], active: Iterable[KubeObject], *, except_name: str | None = None
) -> str | None:
    """The name of an active rollout (not finished) whose plan shares a pod with ``plan_uids``."""
    wanted = set(plan_uids)
    for other in active:
        name = str((other.get("metadata") or {}).get("name", ""))
        if name == except_name or is_finished(other):
            continue
        theirs = {p.get("uid") for p in (other.get("spec") or {}).get("pods") or []}
        if wanted & theirs:
            return name
    return None
