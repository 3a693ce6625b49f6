"""A watch of one kind of object in one namespace, in a thread, through the control plane's
admin client: the independent witnesses of the tests and the bench (``bench/readiness.py``,
``bench/restart_chain.py``, ``tests/support/rollouts.py``) see the apiserver's changes
without any part of the service.

The watch starts from the resourceVersion of a list and resumes from the last event it saw, so
it sees every change in the apiserver's order (a list again only when the version expired). A
failure in the thread is raised to the owner at its next call (:meth:`ApiWatch.check`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Self

from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.rest import ApiException

from harness.controlplane import ControlPlane

Obj = dict[str, Any]
ListCall = Callable[..., Any]  # a list_namespaced_* method, which ``watch`` also follows


class ApiWatch:
    """Subclasses say what to list (:meth:`list_call`) and what to do with what it sees
    (:meth:`relisted`, :meth:`apply`); both run in the watch's thread."""

    name = "api-watch"

    def __init__(self, plane: ControlPlane, namespace: str, selector: str = "") -> None:
        self._plane = plane
        self._namespace = namespace
        self._selector = selector
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def list_call(self, api: k8s.ApiClient) -> tuple[ListCall, tuple[Any, ...]]:
        raise NotImplementedError

    def relisted(self, items: list[Obj]) -> None:
        raise NotImplementedError

    def apply(self, kind: str, obj: Obj) -> None:
        raise NotImplementedError

    # -- use

    def start(self) -> Self:
        """Start the thread; return once the first list is in."""
        self._thread.start()
        if not self._synced.wait(60):
            raise TimeoutError(f"{self.name} did not list in 60 s")
        self.check()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def check(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"{self.name} failed: {self._failure!r}")

    # -- the thread

    def _loop(self) -> None:
        try:
            with self._plane.api_client() as api:
                call, args = self.list_call(api)
                version = self._relist(call, args)
                self._synced.set()
                while not self._stopping.is_set():
                    try:
                        version = self._follow(call, args, version)
                    except ApiException as e:
                        if e.status != 410:
                            raise
                        version = self._relist(call, args)
        except BaseException as e:  # raised to the owner at its next call
            self._failure = e
            self._synced.set()

    def _relist(self, call: ListCall, args: tuple[Any, ...]) -> str:
        response = call(*args, label_selector=self._selector, _preload_content=False)
        listed = json.loads(response.data)
        self.relisted(listed["items"])
        version: str = listed["metadata"]["resourceVersion"]
        return version

    def _follow(self, call: ListCall, args: tuple[Any, ...], version: str) -> str:
        """One watch request (a second long, so a stop is seen soon); the last version seen."""
        for event in watch.Watch().stream(
            call,
            *args,
            label_selector=self._selector,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
            deserialize=False,
        ):
            obj = event["object"]
            if event["type"] != "BOOKMARK":
                self.apply(event["type"], obj)
            version = obj["metadata"]["resourceVersion"]
        return version
