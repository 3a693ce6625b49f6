"""An independent witness of availability: a watch of the pods a label selector matches, in a
thread of the bench, through its own admin client. Nothing of the service is used, so what it
sees is what a Service's endpoints would see: how many pods were not Ready at the same time.

The watch starts from the resourceVersion of a list and resumes from the last event it saw, so
it sees every change in the apiserver's order (a list again only when the version expired).
Measurements happen in windows: :meth:`ReadinessWatch.begin` starts one from the pods' current
state; the window's peak is the most pods not Ready at once until the next ``begin``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.rest import ApiException

from harness.controlplane import ControlPlane

Pod = dict[str, Any]


def pod_is_ready(pod: Pod) -> bool:
    """The pod's Ready condition is True and it is not being deleted (an endpoint's view)."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class Window:
    """What the watch saw since :meth:`ReadinessWatch.begin`."""

    peak: int  # most pods not Ready at once
    went_unready: Counter[str] = field(default_factory=Counter)  # pod -> Ready-to-not moves


class ReadinessWatch:
    def __init__(self, plane: ControlPlane, namespace: str, selector: str) -> None:
        self._plane = plane
        self._namespace = namespace
        self._selector = selector
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._failure: BaseException | None = None
        self._window = Window(peak=0)
        self._thread = threading.Thread(target=self._loop, name="readiness-watch", daemon=True)

    # -- use

    def start(self) -> ReadinessWatch:
        self._thread.start()
        if not self._synced.wait(60):
            raise TimeoutError("the readiness watch did not list the pods in 60 s")
        self._raise_failure()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def begin(self) -> None:
        """A new window, from the pods' state now."""
        self._raise_failure()
        with self._lock:
            self._window = Window(peak=self._unready_locked())

    def window(self) -> Window:
        self._raise_failure()
        with self._lock:
            return Window(self._window.peak, Counter(self._window.went_unready))

    def counts(self) -> tuple[int, int]:
        """(pods, pods not Ready) now."""
        self._raise_failure()
        with self._lock:
            return len(self._ready), self._unready_locked()

    # -- the watch

    def _unready_locked(self) -> int:
        return sum(1 for ready in self._ready.values() if not ready)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the readiness watch failed: {self._failure!r}")

    def _apply(self, kind: str, pod: Pod) -> None:
        name = pod["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self._ready.pop(name, None)
                return
            ready = pod_is_ready(pod)
            if self._ready.get(name) and not ready:
                self._window.went_unready[name] += 1
            self._ready[name] = ready
            self._window.peak = max(self._window.peak, self._unready_locked())

    def _loop(self) -> None:
        try:
            with self._plane.api_client() as api:
                core = k8s.CoreV1Api(api)
                version = self._relist(core)
                self._synced.set()
                while not self._stopping.is_set():
                    try:
                        version = self._follow(core, version)
                    except ApiException as e:
                        if e.status != 410:
                            raise
                        version = self._relist(core)
        except BaseException as e:  # raised to the bench at its next call
            self._failure = e
            self._synced.set()

    def _relist(self, core: k8s.CoreV1Api) -> str:
        response = core.list_namespaced_pod(
            self._namespace, label_selector=self._selector, _preload_content=False
        )
        listed = json.loads(response.data)
        with self._lock:
            self._ready = {p["metadata"]["name"]: pod_is_ready(p) for p in listed["items"]}
            self._window.peak = max(self._window.peak, self._unready_locked())
        version: str = listed["metadata"]["resourceVersion"]
        return version

    def _follow(self, core: k8s.CoreV1Api, version: str) -> str:
        """One watch request (a second long, so a stop is seen soon); the last version seen."""
        for event in watch.Watch().stream(
            core.list_namespaced_pod,
            self._namespace,
            label_selector=self._selector,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
            deserialize=False,
        ):
            obj = event["object"]
            if event["type"] != "BOOKMARK":
                self._apply(event["type"], obj)
            version = obj["metadata"]["resourceVersion"]
        return version


def wait_all_ready(witness: ReadinessWatch, pods: int, timeout: float) -> None:
    """Until the witness sees ``pods`` pods, every one Ready."""
    deadline = time.monotonic() + timeout
    while witness.counts() != (pods, 0):
        if time.monotonic() > deadline:
            seen, unready = witness.counts()
            raise TimeoutError(f"{unready} of {seen} pods still not Ready after {timeout:.0f}s")
        time.sleep(0.1)
