"""Where each restart's time goes: a watch of the ContainerRecreateRequests of a namespace
(``harness/watching.py``) notes when each pod's restart was first seen and when it reached each
stage, and the readiness witness (``bench/readiness.py``) adds when the pod left Ready and came
back. The stages are the writes of the components that move a restart on:

- created → pod not Ready: kruise-manager takes the pod out of Ready (``KruisePodReady``) and
  starts the unready grace (the CRR's ``PreRecreateGrace`` condition);
- not Ready → killed: the grace (``unreadyGracePeriodSeconds``; kruise-daemon counts it from
  the condition's time, which has one-second resolution, so 2 to 3 s for a grace of 3);
- killed → running again: the kubelet starts the container again and kruise-daemon sees it;
- running again → Completed: kruise-daemon ends the CRR;
- Completed → Ready: kruise-manager gives ``KruisePodReady`` back and the kubelet sets Ready;
- then the next restart's create: the rollout controller claiming the next pod once a pod is
  Ready again, or the one-at-a-time client seeing the restart finished and sending the next.

Times are ``time.monotonic`` at the moment the bench's watches received each change.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from bench.readiness import Window
from bench.stats import median
from harness.controlplane import ControlPlane
from harness.watching import ApiWatch, ListCall, Obj
from service.core.crr import CRR_GROUP, CRR_PLURAL

CRR_VERSION = "v1beta1"
STAGES = ("created", "grace", "killed", "running", "completed")


def _stage_reached(crr: Obj) -> list[str]:
    status = crr.get("status") or {}
    reached = ["created"]
    if any(c.get("type") == "PreRecreateGrace" for c in status.get("conditions") or []):
        reached.append("grace")
    states = status.get("containerRecreateStates") or []
    if states and all(s.get("isKilled") or s.get("phase") == "Succeeded" for s in states):
        reached.append("killed")
    if states and all(s.get("phase") == "Succeeded" for s in states):
        reached.append("running")
    if status.get("phase") == "Completed":
        reached.append("completed")
    return reached


class RestartChainWatch(ApiWatch):
    """pod name -> stage -> when first seen, for the CRRs made after :meth:`begin`."""

    name = "restart-chain-watch"

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        super().__init__(plane, namespace)
        self._lock = threading.Lock()
        self._known: set[str] = set()  # CRRs that existed before begin(): not this way's
        self._seen: dict[str, dict[str, float]] = {}

    def begin(self) -> None:
        self.check()
        with self._lock:
            self._known |= set(self._seen)
            self._seen = {}

    def stages(self) -> dict[str, dict[str, float]]:
        self.check()
        with self._lock:
            return {pod: dict(times) for pod, times in self._seen.items()}

    def list_call(self, api: k8s.ApiClient) -> tuple[ListCall, tuple[Any, ...]]:
        custom = k8s.CustomObjectsApi(api)
        return custom.list_namespaced_custom_object, (
            CRR_GROUP,
            CRR_VERSION,
            self._namespace,
            CRR_PLURAL,
        )

    def relisted(self, items: list[Obj]) -> None:
        with self._lock:
            self._known |= {c["metadata"]["name"] for c in items}

    def apply(self, kind: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        now = time.monotonic()
        with self._lock:
            if kind == "DELETED" or name in self._known:
                return
            times = self._seen.setdefault(str(obj["spec"]["podName"]), {})
            for stage in _stage_reached(obj):
                times.setdefault(stage, now)


@dataclass(frozen=True, slots=True)
class Chain:
    """Median seconds of each stage over a way's pods, and what the way adds between pods."""

    stages: dict[str, float]  # "created → not Ready" ... "Completed → Ready", "created → Ready"
    to_next: float | None  # a pod Ready again (rollout) or Completed (one at a time) → next create
    to_next_label: str


def chain(seen: Mapping[str, Mapping[str, float]], window: Window, *, next_after: str) -> Chain:
    """The stage medians of one way; ``next_after``: "ready" (a rollout claims the next pod
    once one is Ready again) or "completed" (a client sends the next once one finished)."""
    spans: dict[str, list[float]] = {}

    def span(label: str, start: float | None, end: float | None) -> None:
        if start is not None and end is not None:
            spans.setdefault(label, []).append(end - start)

    for pod, times in seen.items():
        unready = window.unready_at.get(pod)
        ready = window.ready_again_at.get(pod)
        span("created → not Ready", times.get("created"), unready)
        span("not Ready → killed", unready, times.get("killed"))
        span("killed → running again", times.get("killed"), times.get("running"))
        span("running again → Completed", times.get("running"), times.get("completed"))
        span("Completed → Ready", times.get("completed"), ready)
        span("created → Ready", times.get("created"), ready)
    creates = sorted(t["created"] for t in seen.values() if "created" in t)
    if next_after == "ready":
        ends = sorted(window.ready_again_at[p] for p in seen if p in window.ready_again_at)
        label = "a pod Ready again → the next restart created"
    else:
        ends = sorted(t["completed"] for t in seen.values() if "completed" in t)
        label = "a restart Completed → the next one created"
    gaps = []
    for end in ends:
        index = bisect.bisect_left(creates, end)
        if index < len(creates):
            gaps.append(creates[index] - end)
    return Chain(
        stages={label: median(values) for label, values in spans.items()},
        to_next=median(gaps) if gaps else None,
        to_next_label=label,
    )
