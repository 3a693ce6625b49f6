"""An independent witness of availability: a watch of the pods a label selector matches
(``harness/watching.py``). Nothing of the service is used, so what it sees is what a Service's
endpoints would see: how many pods were not Ready at the same time, and when each pod left
Ready and came back.

Measurements happen in windows: :meth:`ReadinessWatch.begin` starts one from the pods' current
state; the window's peak is the most pods not Ready at once until the next ``begin``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.watching import ApiWatch, ListCall, Obj


def pod_is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True and it is not being deleted (an endpoint's view)."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class Window:
    """What the watch saw since :meth:`ReadinessWatch.begin` (times: ``time.monotonic``)."""

    peak: int  # most pods not Ready at once
    went_unready: Counter[str] = field(default_factory=Counter)  # pod -> Ready-to-not moves
    unready_at: dict[str, float] = field(default_factory=dict)  # pod -> first left Ready
    ready_again_at: dict[str, float] = field(default_factory=dict)  # pod -> first back


class ReadinessWatch(ApiWatch):
    name = "readiness-watch"

    def __init__(self, plane: ControlPlane, namespace: str, selector: str) -> None:
        super().__init__(plane, namespace, selector)
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._window = Window(peak=0)

    # -- use

    def begin(self) -> None:
        """A new window, from the pods' state now."""
        self.check()
        with self._lock:
            self._window = Window(peak=self._unready_locked())

    def window(self) -> Window:
        self.check()
        with self._lock:
            w = self._window
            return Window(
                w.peak, Counter(w.went_unready), dict(w.unready_at), dict(w.ready_again_at)
            )

    def counts(self) -> tuple[int, int]:
        """(pods, pods not Ready) now."""
        self.check()
        with self._lock:
            return len(self._ready), self._unready_locked()

    # -- the watch

    def list_call(self, api: k8s.ApiClient) -> tuple[ListCall, tuple[Any, ...]]:
        return k8s.CoreV1Api(api).list_namespaced_pod, (self._namespace,)

    def relisted(self, items: list[Obj]) -> None:
        with self._lock:
            self._ready = {p["metadata"]["name"]: pod_is_ready(p) for p in items}
            self._window.peak = max(self._window.peak, self._unready_locked())

    def apply(self, kind: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        now = time.monotonic()
        with self._lock:
            if kind == "DELETED":
                self._ready.pop(name, None)
                return
            ready = pod_is_ready(obj)
            was = self._ready.get(name)
            if was and not ready:
                self._window.went_unready[name] += 1
                self._window.unready_at.setdefault(name, now)
            elif was is False and ready and name in self._window.unready_at:
                self._window.ready_again_at.setdefault(name, now)
            self._ready[name] = ready
            self._window.peak = max(self._window.peak, self._unready_locked())

    def _unready_locked(self) -> int:
        return sum(1 for ready in self._ready.values() if not ready)


def wait_all_ready(witness: ReadinessWatch, pods: int, timeout: float) -> None:
    """Until the witness sees ``pods`` pods, every one Ready."""
    deadline = time.monotonic() + timeout
    while witness.counts() != (pods, 0):
        if time.monotonic() > deadline:
            seen, unready = witness.counts()
            raise TimeoutError(f"{unready} of {seen} pods still not Ready after {timeout:.0f}s")
        time.sleep(0.1)
