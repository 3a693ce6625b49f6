"""The rollout controller. Every replica runs one; the ``RestartRollout`` object in the
apiserver is the only state (docs/rollouts.md).

A step reads the rollout, its pods and its restarts from the watch caches, asks the pure rules
(``service.core.rollouts.decide``) what to do, and writes the whole object back with its
resourceVersion as precondition: a claim (a pod marked ``Restarting``) lands before its
ContainerRecreateRequest is created, and a replica that decided on stale state gets a conflict
and decides again. The CRR's name derives from (rollout, pod), so creating it twice meets
``AlreadyExists``, never a second restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

from anyio import to_thread

from service.cache.budgets import BudgetCache
from service.cache.pods import PodCache
from service.cache.rollouts import RolloutCache
from service.cache.store import RestartCache
from service.config import Settings
from service.core.crr import REQUESTED_BY_ANNOTATION, build_crr
from service.core.errors import (
    GatewayError,
    KubeAlreadyExists,
    KubeConflict,
    KubeNotFound,
)
from service.core.naming import request_hash
from service.core.objects import KubeObject
from service.core.pods import Pod, format_time, parse_time
from service.core.rollout_object import restart_request_for
from service.core.rollouts import ROLLOUT_LABEL, Step, decide, is_finished, overlapping
from service.core.rules import classify_rejection, create_warnings, rejection_detail
from service.kube.port import ROLLOUTS, KubeAPI
from service.metrics import Metrics

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, rollout name)

# a claimed restart the caches have not seen for this long is looked up in the apiserver
MISSING_RESTART_GRACE = timedelta(seconds=3)


class RolloutController:
    """Moves the served scopes' active rollouts on, one step at a time.

    Work arrives as rollout keys: from rollout changes, from pod changes in a namespace with
    active rollouts, from changes of a rollout's restarts, and from a periodic resync
    (``minReadySeconds`` passing has no event). One worker runs the steps one after another,
    so a rollout is never stepped twice at once within a replica; across replicas the
    resourceVersion precondition serializes them.
    """

    def __init__(
        self,
        kube: KubeAPI,
        rollouts: RolloutCache,
        restarts: RestartCache,
        pods: PodCache,
        budgets: BudgetCache,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube = kube
        self._rollouts = rollouts
        self._restarts = restarts
        self._pods = pods
        self._budgets = budgets
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._rollouts.subscribe(self.enqueue)
        self._pods.subscribe(self._on_pods)
        self._budgets.subscribe(self._on_pods)  # a disruption budget added or changed
        self._restarts.subscribe(self._on_restart)
        self._tasks = [
            asyncio.create_task(self._work(), name="rollout-controller"),
            asyncio.create_task(self._resync_forever(), name="rollout-resync"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def enqueue(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _on_pods(self, namespace: str) -> None:
        for entry in self._rollouts.active():
            if entry.rollout.namespace == namespace:
                self.enqueue(namespace, entry.rollout.name)

    def _on_restart(self, namespace: str, name: str) -> None:
        entry = self._restarts.get(namespace, name)
        if entry is not None and entry.rollout:
            self.enqueue(namespace, entry.rollout)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.rollout_resync_seconds)
            for entry in self._rollouts.entries():
                if entry.deleted_at is None:
                    self.enqueue(entry.rollout.namespace, entry.rollout.name)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self.reconcile(*key)
            except asyncio.CancelledError:
                raise
            except KubeConflict:
                # another replica (or a pause) wrote first: decide again on what it wrote
                self._metrics.rollout_conflicts.inc()
                log.debug("rollout %s/%s changed under us; stepping again", *key)
            except GatewayError as e:
                log.warning("rollout %s/%s: %s", *key, e.detail)
            except Exception:
                log.exception("rollout %s/%s: step failed", *key)

    # ---------------------------------------------------------------- one step

    async def reconcile(self, namespace: str, name: str) -> None:
        entry = self._rollouts.get(namespace, name)
        if entry is None or entry.deleted_at is not None:
            return
        obj = entry.object
        now = self._clock()
        if is_finished(obj):
            await self._expire(obj, now)
            return
        if not all(
            cache.synced(namespace) for cache in (self._pods, self._restarts, self._budgets)
        ):
            return
        older = self._older_overlapping(obj)
        if older is not None:
            await self._fail_overlap(obj, older, now)
            return
        spec = obj.get("spec") or {}
        members = self._pods.matching(namespace, spec.get("podSelector") or {})
        restarts = {e.restart.name: e.restart for e in self._restarts.for_rollout(namespace, name)}
        step = decide(
            obj,
            members,
            restarts,
            self._budgets.in_namespace(namespace),
            self._pods.in_namespace(namespace),
            now,
            busy=self._busy(namespace, name, members),
        )
        written = await self._write(obj, step) if self._material(obj, step) else obj
        if step.start:
            refused = await self._start(written, step.start)
            if refused:
                await self._mark(written, {p: ("Failed", m) for p, m in refused.items()}, now)
        for restart, version in step.delete_restarts:
            # KubeConflict: kruise started it since we looked; it runs and ends as it will
            with contextlib.suppress(KubeNotFound, KubeConflict):
                deleted = await to_thread.run_sync(
                    partial(self._kube.delete_crr, namespace, restart, resource_version=version)
                )
                if deleted.get("kind") == "Status":
                    self._restarts.tombstone(namespace, restart)
                else:
                    self._restarts.observe_deleted(deleted)
        if step.missing_restarts:
            await self._find_missing(written, step.missing_restarts, now)

    @staticmethod
    def _material(obj: KubeObject, step: Step) -> bool:
        """Whether the step changed what a write is for: a pod's state, the phase, the message,
        a pause. The count of unavailable pods alone is not worth a write (it rides along with
        the next one), which keeps a pod's restart at about three apiserver requests."""
        if step.pause:
            return True
        old = dict(obj.get("status") or {})
        new = dict(step.status)
        old.pop("unavailable", None)
        new.pop("unavailable", None)
        return old != new

    async def _write(self, obj: KubeObject, step: Step) -> KubeObject:
        meta = obj.get("metadata") or {}
        body = copy.deepcopy(obj)
        body["status"] = step.status
        if step.pause:
            body["spec"]["paused"] = True
        written = await to_thread.run_sync(
            self._kube.replace_object, ROLLOUTS, meta["namespace"], meta["name"], body
        )
        self._rollouts.observe(written)
        if step.finished:
            phase = step.status.get("phase", "")
            self._metrics.rollouts_finished.labels(phase).inc()
            log.info("rollout %s/%s finished: %s", meta["namespace"], meta["name"], phase)
        return written

    def _busy(self, namespace: str, rollout: str, members: list[Pod]) -> dict[str, str]:
        """Member pods with an active restart this rollout did not make."""
        busy: dict[str, str] = {}
        for pod in members:
            for entry in self._restarts.for_pod(namespace, pod.name):
                if entry.deleted_at is None and not entry.finished and entry.rollout != rollout:
                    busy[pod.name] = entry.name
        return busy

    # ---------------------------------------------------------------- restarts

    async def _start(self, obj: KubeObject, pods: list[str]) -> dict[str, str]:
        """Create the restarts of freshly claimed pods (concurrently). Returns the pods whose
        restart kruise refused, with its words."""
        version = await to_thread.run_sync(lambda: self._kube.crr_version())
        results = await asyncio.gather(*(self._create_restart(obj, p, version) for p in pods))
        return {pod: message for pod, message in zip(pods, results, strict=True) if message}

    async def _create_restart(self, obj: KubeObject, pod_name: str, version: str) -> str | None:
        meta = obj.get("metadata") or {}
        namespace, rollout = str(meta["namespace"]), str(meta["name"])
        entry = next(e for e in obj["status"]["pods"] if e["name"] == pod_name)
        pod = self._pods.get(namespace, pod_name)
        request = restart_request_for(obj, pod_name)
        containers = request.containers or (pod.container_names if pod is not None else [])
        body = build_crr(
            namespace=namespace,
            name=entry["restart"],
            version=version,
            request=request,
            containers=containers,
            requested_by=str((meta.get("annotations") or {}).get(REQUESTED_BY_ANNOTATION, "")),
            warnings=create_warnings(pod, request, containers) if pod is not None else [],
            body_hash=request_hash(request),
            idempotency=None,
            extra_labels={ROLLOUT_LABEL: rollout},
        )
        try:
            created = await to_thread.run_sync(
                lambda: self._kube.create_crr(namespace, body, dry_run=False)
            )
        except KubeAlreadyExists:
            return None  # made by an earlier attempt or another replica: the same restart
        except GatewayError as e:
            # kruise's webhook refused (the pod changed since the plan): the pod's end
            if classify_rejection(e.detail) is None:
                raise
            return rejection_detail(e.detail)
        self._restarts.observe(created)
        self._metrics.restarts_created.labels(namespace).inc()
        return None

    async def _find_missing(self, obj: KubeObject, pods: list[str], now: datetime) -> None:
        """Claimed pods whose restart no cache holds: look it up. Absent for good (a crash
        between claim and create, or kruise's TTL deleted it while no replica watched): if the
        pod's containers changed since the claim, the restart happened; otherwise make it."""
        meta = obj.get("metadata") or {}
        namespace = str(meta["namespace"])
        entries = {e["name"]: e for e in (obj.get("status") or {}).get("pods") or []}
        to_create: list[str] = []
        ends: dict[str, tuple[str, str]] = {}
        for pod_name in pods:
            entry = entries[pod_name]
            claimed = parse_time(entry.get("claimedAt"))
            if claimed is not None and now - claimed < MISSING_RESTART_GRACE:
                continue
            try:
                found = await to_thread.run_sync(
                    self._kube.get_crr, namespace, str(entry.get("restart"))
                )
            except KubeNotFound:
                if (obj.get("spec") or {}).get("cancelled"):
                    # cancelled, and its restart is gone (deleted before it started, or a
                    # crash between the claim and the create): never make it now
                    ends[pod_name] = ("Skipped", "the rollout was cancelled before it started")
                    continue
                pod = self._pods.get(namespace, pod_name)
                before = entry.get("containerIDs") or {}
                after = pod.container_ids(before) if pod is not None else {}
                if before and after and all(after.get(c) != cid for c, cid in before.items()):
                    ends[pod_name] = (
                        "Succeeded",
                        "its restart ended and was deleted before any replica saw the end; "
                        "the containers were recreated",
                    )
                else:
                    to_create.append(pod_name)
                continue
            self._restarts.observe(found)
        if to_create:
            refused = await self._start(obj, to_create)
            ends.update((p, ("Failed", m)) for p, m in refused.items())
        if ends:
            await self._mark(obj, ends, now)

    async def _mark(
        self, obj: KubeObject, ends: Mapping[str, tuple[str, str]], now: datetime
    ) -> None:
        """Write ends of claimed pods that their restarts cannot tell, as (state, message):
        kruise refused the create, or the restart is gone but the pod shows it happened."""
        latest = self._rollouts.get(obj["metadata"]["namespace"], obj["metadata"]["name"])
        body = copy.deepcopy(latest.object if latest is not None else obj)
        failed = False
        for entry in body.get("status", {}).get("pods") or []:
            if entry["name"] in ends and entry["state"] == "Restarting":
                entry["state"], entry["message"] = ends[entry["name"]]
                entry["finishedAt"] = format_time(now)
                failed = failed or entry["state"] == "Failed"
        if failed and body["spec"].get("pauseOnFailure", True):
            body["spec"]["paused"] = True
        meta = body["metadata"]
        written = await to_thread.run_sync(
            self._kube.replace_object, ROLLOUTS, meta["namespace"], meta["name"], body
        )
        self._rollouts.observe(written)
        self.enqueue(meta["namespace"], meta["name"])

    # ---------------------------------------------------------------- overlap and expiry

    def _older_overlapping(self, obj: KubeObject) -> str | None:
        """An older active rollout sharing a pod with this one while this one has started
        nothing: two creates on two replicas raced past the create's check. The older goes on."""
        status = obj.get("status") or {}
        if any(
            p.get("state") in ("Restarting", "Succeeded", "Failed")
            for p in status.get("pods") or []
        ):
            return None
        meta = obj.get("metadata") or {}
        mine = (str(meta.get("creationTimestamp", "")), str(meta.get("name", "")))
        older = [
            e.object
            for e in self._rollouts.active()
            if e.rollout.namespace == meta.get("namespace")
            and (str(e.object["metadata"].get("creationTimestamp", "")), e.rollout.name) < mine
        ]
        uids = [p.get("uid", "") for p in (obj.get("spec") or {}).get("pods") or []]
        return overlapping(uids, older, except_name=str(meta.get("name")))

    async def _fail_overlap(self, obj: KubeObject, older: str, now: datetime) -> None:
        body = copy.deepcopy(obj)
        status = body.setdefault("status", {})
        status["phase"] = "Failed"
        status["message"] = (
            f"rollout {older} was created first and covers some of these pods; "
            "nothing was restarted"
        )
        status["completionTime"] = format_time(now)
        for entry in status.get("pods") or []:
            if entry.get("state") == "Waiting":
                entry["state"] = "Skipped"
                entry["message"] = f"rollout {older} covers this pod"
        meta = body["metadata"]
        written = await to_thread.run_sync(
            self._kube.replace_object, ROLLOUTS, meta["namespace"], meta["name"], body
        )
        self._rollouts.observe(written)

    async def _expire(self, obj: KubeObject, now: datetime) -> None:
        completed = parse_time((obj.get("status") or {}).get("completionTime"))
        retention = timedelta(seconds=self._settings.rollout_retention_seconds)
        if completed is None or now < completed + retention:
            return
        meta = obj["metadata"]
        with contextlib.suppress(KubeNotFound):
            await to_thread.run_sync(
                self._kube.delete_object, ROLLOUTS, meta["namespace"], meta["name"]
            )
        log.info("rollout %s/%s expired after its retention", meta["namespace"], meta["name"])
