"""Events recorded off the request's path: a failure to record one is logged and never fails
what it records (a restart, a rollout step)."""

from __future__ import annotations

import asyncio
import logging
import socket

from anyio import to_thread

from service.core.objects import KubeObject
from service.kube.port import KubeAPI

log = logging.getLogger(__name__)

INSTANCE = socket.gethostname()  # the replica that reports the Events


class EventRecorder:
    def __init__(self, kube: KubeAPI, *, enabled: bool) -> None:
        self._kube = kube
        self._enabled = enabled
        self._pending: set[asyncio.Task[None]] = set()

    def record(self, body: KubeObject) -> None:
        """Post ``body`` (a core/v1 Event) in the background."""
        if not self._enabled:
            return
        task = asyncio.create_task(self._post(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: KubeObject) -> None:
        namespace = str(body["metadata"]["namespace"])
        try:
            await to_thread.run_sync(self._kube.create_event, namespace, body)
        except Exception as e:  # best effort by design
            involved = body.get("involvedObject") or {}
            log.warning(
                "could not record Event %s on %s %s/%s: %s",
                body.get("reason"),
                involved.get("kind"),
                namespace,
                involved.get("name"),
                e,
            )

    async def drain(self, timeout: float = 5.0) -> None:
        """Let pending Events finish (at shutdown, before the client closes)."""
        pending = list(self._pending)
        if pending:
            await asyncio.wait(pending, timeout=timeout)
