"""Events recorded off the request's path, one at a time, as client-go's recorder does.

An Event is the audit trail a pod's readers see (``kubectl describe``); the audit log line is
the record of what was asked. So an Event never delays or fails what it records (a restart, a
rollout step), and under a burst of creates the Events must not compete with them for the
apiserver: a create's answer waits on its CRR POST, and an Event POST running beside every
create doubled the apiserver's writes at the moment the creates needed it most
(BENCHMARKS.md, "Creates"). As client-go's ``EventBroadcaster`` (one goroutine writes every
Event to the sink, behind a queue of ``maxQueuedEvents`` = 1000), one worker posts the queued
Events in order; a burst's Events are posted after it, at the pace the apiserver answers. A
full queue drops the newest Event with a warning (client-go drops too); a failed post is
logged, not retried (client-go retries up to 12 times, 10 s apart: an Event that late says
little, and a failing apiserver is better left alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from anyio import to_thread

from service.core.objects import KubeObject
from service.kube.port import KubeAPI

log = logging.getLogger(__name__)

INSTANCE = socket.gethostname()  # the replica that reports the Events
MAX_QUEUED_EVENTS = 1000  # client-go's maxQueuedEvents


class EventRecorder:
    def __init__(self, kube: KubeAPI, *, enabled: bool, max_queued: int = MAX_QUEUED_EVENTS):
        self._kube = kube
        self._enabled = enabled
        self._queue: asyncio.Queue[KubeObject] = asyncio.Queue(max_queued)
        self._worker: asyncio.Task[None] | None = None
        self._dropped = 0

    def record(self, body: KubeObject) -> None:
        """Queue ``body`` (a core/v1 Event) to be posted after those before it."""
        if not self._enabled:
            return
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                log.warning(
                    "Events dropped so far: %d (the queue of %d Events to post is full)",
                    self._dropped,
                    self._queue.maxsize,
                )
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._post_queued(), name="event-recorder")

    async def _post_queued(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                await self._post(body)
            finally:
                self._queue.task_done()

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
        """Post what is queued, for at most ``timeout`` (at shutdown, before the client
        closes); then stop the worker."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        if not self._queue.empty():
            log.warning("Events dropped at shutdown: %d still queued", self._queue.qsize())
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None
