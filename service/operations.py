"""The use cases: what a create or a delete does, step by step. Rules from ``service.core``,
I/O through the ``KubeAPI`` port (in worker threads), state from the cache. No web framework:
the HTTP layer calls these and renders what they return or raise."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from anyio import to_thread

from service.cache.entries import Entry, make_entry
from service.cache.pods import PodCache
from service.cache.store import RestartCache
from service.config import Settings
from service.core.crr import build_crr
from service.core.errors import (
    ContainerNotStarted,
    IdempotencyKeyReused,
    KruiseLagging,
    KubeAlreadyExists,
    KubeInvalid,
    KubeNotFound,
    KubeTimeout,
    PodNotFound,
    PodNotRestartable,
    RestartExists,
    RestartNotFound,
    UnknownContainers,
)
from service.core.events import (
    EVENT_REASON_CREATE,
    EVENT_REASON_DELETE,
    create_message,
    delete_message,
    restart_event,
)
from service.core.guardrails import check_active_cap
from service.core.identity import ANONYMOUS, Caller
from service.core.naming import generate_name, idempotency_label, idempotent_name, request_hash
from service.core.objects import KubeObject
from service.core.pods import Pod
from service.core.reading import crr_idempotency_label, crr_request_hash
from service.core.rules import (
    PENDING_POD,
    check_deadline,
    check_no_active_restart,
    check_pod_restartable,
    classify_rejection,
    create_warnings,
    rejection_detail,
    resolve_containers,
)
from service.core.schemas import RestartRequest
from service.kube.port import KubeAPI
from service.kube.recorder import INSTANCE, EventRecorder
from service.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """What a create answers: the restart, and whether this request created it (False for a
    dry run, and for a replay of an earlier request with the same Idempotency-Key)."""

    entry: Entry
    created: bool


class BuildCrr(Protocol):
    """A create's CRR, all but its version: that one comes from discovery, in the thread."""

    def __call__(self, *, version: str) -> KubeObject: ...


class RestartOperations:
    # how long a create waits for kruise's webhook to catch up with a pod, about 3 s in all
    webhook_lag_delays: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.5)

    def __init__(
        self,
        kube: KubeAPI,
        cache: RestartCache,
        settings: Settings,
        metrics: Metrics,
        *,
        pods: PodCache,
        recorder: EventRecorder,
    ) -> None:
        self._kube = kube
        self._cache = cache
        self._pods = pods
        self._settings = settings
        self._metrics = metrics
        self._recorder = recorder

    async def create(
        self,
        namespace: str,
        request: RestartRequest,
        *,
        caller: Caller,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> CreateOutcome:
        check_deadline(request, self._settings.max_active_deadline_seconds)
        body_hash = request_hash(request)
        key_label = idempotency_label(namespace, idempotency_key) if idempotency_key else None
        if key_label is not None:
            known = self._cache.find_idempotent(namespace, key_label)
            if known is not None:
                return self._replay(known, body_hash)
        check_active_cap(
            namespace,
            self._cache.current(namespace),
            self._settings.max_active_restarts_per_namespace,
        )

        pod = await self._pod_for_create(namespace, request)
        check_pod_restartable(pod)
        containers = resolve_containers(pod, request.containers)
        if key_label is not None:
            # look again: the pod read yielded, and another replica's create with the same
            # key may have reached our cache meanwhile (it must not count as "in progress")
            known = self._cache.find_idempotent(namespace, key_label)
            if known is not None:
                return self._replay(known, body_hash)
        check_no_active_restart(pod, self._cache.active_for_pod(namespace, request.pod))
        warnings = create_warnings(pod, request, containers)

        if request.name:
            name = request.name
        elif idempotency_key:
            name = idempotent_name(namespace, idempotency_key)
        else:
            name = generate_name(request.pod)

        for attempt in range(3):
            build = partial(
                build_crr,
                namespace=namespace,
                name=name,
                request=request,
                containers=containers,
                requested_by=caller.name,
                warnings=warnings,
                body_hash=body_hash,
                idempotency=key_label,
                request_id=request_id,
            )
            try:
                obj = await self._create_patiently(namespace, request.pod, build, dry_run)
            except KubeTimeout as e:
                if dry_run:
                    raise
                hint = (
                    "retry with the same Idempotency-Key to learn whether it did"
                    if key_label is not None
                    else "check GET /v1/namespaces/{ns}/restarts?pod={pod} before retrying; "
                    "an Idempotency-Key makes retries safe"
                ).format(ns=namespace, pod=request.pod)
                raise KubeTimeout(
                    f"{e.detail}; restart {name} may still be created: {hint}",
                    reason=e.reason,
                    code=e.code,
                    extra={"restart": name},
                ) from e
            except KubeAlreadyExists as e:
                if key_label is not None:
                    return await self._resolve_existing(namespace, name, key_label, body_hash, e)
                if request.name or attempt == 2:
                    raise RestartExists(f"restart {name} already exists") from e
                name = generate_name(request.pod)  # a random suffix collided: draw again
                continue
            if dry_run:
                return CreateOutcome(make_entry(obj), created=False)
            self._metrics.restarts_created.labels(namespace).inc()
            log.info(
                "restart %s/%s created for pod %s containers %s by %s",
                namespace,
                name,
                request.pod,
                ",".join(containers),
                caller.name,
            )
            entry = self._cache.observe(obj)
            restart = entry.restart
            self._record_event(
                namespace,
                restart.pod,
                restart.podUID or pod.uid,
                EVENT_REASON_CREATE,
                create_message(
                    caller.name, containers, restart.name, request.reason, request_id or "-"
                ),
            )
            return CreateOutcome(entry, created=True)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pod_for_create(self, namespace: str, request: RestartRequest) -> Pod:
        """The pod from the pod cache, with no apiserver request when the cache can answer.
        The cache may be behind, so it never refuses on its own: a pod it does not have, or
        whose cached state our checks would refuse, or that is not the pod an active restart
        targets (replaced under the same name), is read again with a GET; so is every pod
        while the cache has not synced the namespace or has lost its watch (then the GET says
        whether the apiserver is there at all). A pod it has may have changed since too:
        kruise's webhook reads the pod itself and stays the last word (its refusals answer as
        our checks would). A fetched pod becomes the same record a cached one is."""
        if self._pods.synced(namespace) and self._pods.stale_since(namespace) is None:
            pod = self._pods.get(namespace, request.pod)
            if pod is not None and self._cached_pod_holds(namespace, pod, request):
                return pod
        try:
            fetched = await to_thread.run_sync(self._kube.get_pod, namespace, request.pod)
        except KubeNotFound as e:
            raise PodNotFound(f"no found Pod named {request.pod}") from e
        return self._pods.decode(fetched)

    def _cached_pod_holds(self, namespace: str, pod: Pod, request: RestartRequest) -> bool:
        try:
            check_pod_restartable(pod)
            resolve_containers(pod, request.containers)
        except (PodNotRestartable, UnknownContainers, ContainerNotStarted):
            return False  # a newer pod may pass: ask the apiserver before refusing
        return not any(
            r.podUID and r.podUID != pod.uid
            for r in self._cache.active_for_pod(namespace, request.pod)
        )

    async def _create_patiently(
        self, namespace: str, pod: str, build: BuildCrr, dry_run: bool
    ) -> KubeObject:
        """Create; when kruise's webhook contradicts the pod we just read (it does not exist,
        is not scheduled yet, or has no containerID: none of which a running pod goes back to),
        its informer cache is behind (a fresh pod, or the apiserver was away): wait a little.
        A pod that really became inactive meanwhile is refused at once (409)."""
        for delay in (*self.webhook_lag_delays, None):
            try:
                return await to_thread.run_sync(self._create, namespace, build, dry_run)
            except (PodNotFound, PodNotRestartable, ContainerNotStarted) as e:
                if isinstance(e, PodNotRestartable) and PENDING_POD not in e.detail:
                    raise
                if delay is None:
                    raise KruiseLagging(
                        f"OpenKruise's webhook does not see pod {pod} as it "
                        f"is yet ({e.detail}); retry shortly"
                    ) from e
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(self, namespace: str, build: BuildCrr, dry_run: bool) -> KubeObject:
        """In a worker thread: the CRR's version from discovery (the adapter's, cached after the
        first), the CRR, and its POST. One hop to a thread per create: a second, for the version
        alone, cost about 0.6 ms of a create's 16 ms one at a time (BENCHMARKS.md, "Creates")."""
        body = build(version=self._kube.crr_version())
        try:
            return self._kube.create_crr(namespace, body, dry_run=dry_run)
        except KubeInvalid as e:
            # a webhook denial our checks did not foresee (the pod changed in between):
            # answer as our own check would have
            kind = classify_rejection(e.detail)
            if kind is None:
                raise
            raise kind(rejection_detail(e.detail)) from e

    def _replay(self, entry: Entry, body_hash: str) -> CreateOutcome:
        if entry.request_hash != body_hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key was used for restart {entry.restart.name} with a different "
                "request body",
                extra={"restart": entry.restart.name},
            )
        return CreateOutcome(entry, created=False)

    async def _resolve_existing(
        self,
        namespace: str,
        name: str,
        key_label: str,
        body_hash: str,
        error: KubeAlreadyExists,
    ) -> CreateOutcome:
        """Another request (maybe on another replica) created ``name`` first."""
        try:
            obj = await to_thread.run_sync(self._kube.get_crr, namespace, name)
        except KubeNotFound:  # created and deleted in between: rare; let the caller retry
            raise RestartExists(f"restart {name} already exists") from error
        if crr_idempotency_label(obj) != key_label:
            raise RestartExists(
                f"restart {name} already exists and was not made with this Idempotency-Key"
            ) from error
        if crr_request_hash(obj) != body_hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key was used for restart {name} with a different request body",
                extra={"restart": name},
            ) from error
        return CreateOutcome(self._cache.observe(obj), created=False)

    async def delete(
        self,
        namespace: str,
        name: str,
        *,
        caller: Caller = ANONYMOUS,
        request_id: str | None = None,
    ) -> Entry:
        try:
            obj = await to_thread.run_sync(self._kube.delete_crr, namespace, name)
        except KubeNotFound as e:
            raise RestartNotFound(f"restart {name} not found in namespace {namespace}") from e
        log.info("restart %s/%s deleted by %s", namespace, name, caller.name)
        if obj.get("kind") == "Status":  # custom resources answer a Status, not the object
            known = self._cache.tombstone(namespace, name)
        else:
            known = self._cache.observe_deleted(obj)
        if known is not None:
            self._record_event(
                namespace,
                known.restart.pod,
                known.restart.podUID,
                EVENT_REASON_DELETE,
                delete_message(caller.name, name, request_id or "-"),
            )
        if known is None:  # deleted, but we never saw it: nothing more to tell
            raise RestartNotFound(f"restart {name} not found in namespace {namespace}")
        return known

    # ------------------------------------------------------------ Events (best effort)

    def _record_event(
        self, namespace: str, pod: str, pod_uid: str | None, reason: str, message: str
    ) -> None:
        """Record an Event on the pod off the request's path (``EventRecorder``)."""
        if not pod:
            return
        self._recorder.record(
            restart_event(
                namespace=namespace,
                pod=pod,
                pod_uid=pod_uid,
                reason=reason,
                message=message,
                instance=INSTANCE,
            )
        )
