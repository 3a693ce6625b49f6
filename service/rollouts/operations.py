"""What a rollout create, pause, resume or cancel does, step by step: the plan from the pod
cache and the target workload, the checks, one write of the ``RestartRollout`` object. The
controller (``service.rollouts.controller``) does the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Literal

from anyio import to_thread

from service.cache.pods import PodCache
from service.cache.rollouts import RolloutCache, RolloutEntry
from service.config import Settings
from service.core.errors import (
    CacheNotReady,
    IdempotencyKeyReused,
    KubeAlreadyExists,
    KubeNotFound,
    NoPodsSelected,
    PodNotRestartable,
    RequestInvalid,
    RolloutExists,
    RolloutFinished,
    RolloutNotFound,
    RolloutOverlaps,
    WorkloadNotFound,
)
from service.core.events import ROLLOUT_EVENT_REASONS, object_event, rollout_message
from service.core.identity import Caller
from service.core.naming import generate_name, idempotency_label
from service.core.objects import KubeObject, controller_uid
from service.core.pods import Pod
from service.core.rollout_object import (
    build_rollout,
    rollout_from_object,
    rollout_idempotency_label,
    rollout_request_hash,
)
from service.core.rollout_schemas import Rollout, RolloutRequest
from service.core.rollouts import overlapping
from service.core.rules import check_deadline, check_pod_restartable
from service.core.selection import (
    WorkloadKind,
    check_containers,
    check_selector,
    order_plan,
    resolve_max_unavailable,
    workload_kind,
)
from service.kube.port import REPLICASETS, ROLLOUTS, KubeAPI, Resource
from service.kube.recorder import INSTANCE, EventRecorder
from service.metrics import Metrics

log = logging.getLogger(__name__)

RolloutAction = Literal["pause", "resume", "cancel"]
MAX_ROLLOUT_NAME = 52  # a rollout's restarts are named <rollout>-<10 hex>, at most 63


@dataclass(frozen=True, slots=True)
class RolloutOutcome:
    """What a create answers: the rollout (its cache entry, or for a dry run the rollout as
    it would be), and whether this request created it."""

    rollout: Rollout
    body: bytes
    created: bool


@dataclass(frozen=True, slots=True)
class _Selection:
    pods: list[Pod]  # every selected pod
    pod_selector: KubeObject  # what decides membership while the rollout runs
    target: dict[str, str] | None  # the workload reference, with its uid
    involved: list[KubeObject]  # where the audit Events go
    by_ordinal: bool


def keyed_rollout_name(namespace: str, key: str) -> str:
    """The deterministic name of a keyed rollout (any replica, any body: one object)."""
    return "rollout-k" + idempotency_label(namespace, key)[:16]


class RolloutOperations:
    def __init__(
        self,
        kube: KubeAPI,
        rollouts: RolloutCache,
        pods: PodCache,
        settings: Settings,
        metrics: Metrics,
        recorder: EventRecorder,
    ) -> None:
        self._kube = kube
        self._rollouts = rollouts
        self._pods = pods
        self._settings = settings
        self._metrics = metrics
        self._recorder = recorder

    # ---------------------------------------------------------------- create

    async def create(
        self,
        namespace: str,
        request: RolloutRequest,
        *,
        caller: Caller,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> RolloutOutcome:
        _check_request(request, self._settings.max_active_deadline_seconds)
        body_hash = rollout_request_hash(request)
        key_label = idempotency_label(namespace, idempotency_key) if idempotency_key else None
        if key_label is not None:
            known = self._rollouts.find_idempotent(namespace, key_label)
            if known is not None:
                return _replay(known, body_hash)
        if not self._pods.synced(namespace) or not self._rollouts.synced(namespace):
            raise CacheNotReady("the pod and rollout caches have not synced yet; retry shortly")

        selection = await self._select(namespace, request)
        check_containers(selection.pods, request.containers)
        plan, left_out = _restartable(selection.pods, request.containers)
        if not plan:
            reasons = "; ".join(f"{p.name}: {why}" for p, why in left_out[:5])
            raise NoPodsSelected(
                f"none of the {len(selection.pods)} selected pods can be restarted now ({reasons})"
            )
        resolved = resolve_max_unavailable(request.maxUnavailable, len(selection.pods))
        active = [e.object for e in self._rollouts.active() if e.rollout.namespace == namespace]
        other = overlapping((p.uid for p in plan), active)
        if other is not None:
            raise RolloutOverlaps(
                f"rollout {other} is still active on some of these pods; wait for it to "
                "finish, or cancel it",
                extra={"activeRollout": other},
            )

        if request.name:
            name = request.name
        elif idempotency_key:
            name = keyed_rollout_name(namespace, idempotency_key)
        else:
            base = (request.target.name if request.target else "rollout")[: MAX_ROLLOUT_NAME - 6]
            name = generate_name(base)
        for attempt in range(3):
            body = build_rollout(
                namespace=namespace,
                name=name,
                request=request,
                target=selection.target,
                pod_selector=selection.pod_selector,
                plan=order_plan(plan, by_ordinal=selection.by_ordinal),
                left_out=left_out,
                resolved_max_unavailable=resolved,
                requested_by=caller.name,
                body_hash=body_hash,
                idempotency=key_label,
                request_id=request_id,
                now=datetime.now(UTC),
            )
            try:
                obj = await to_thread.run_sync(
                    partial(self._kube.create_object, ROLLOUTS, namespace, body, dry_run=dry_run)
                )
            except KubeAlreadyExists as e:
                if key_label is not None:
                    return await self._resolve_existing(namespace, name, key_label, body_hash, e)
                if request.name or attempt == 2:
                    raise RolloutExists(f"rollout {name} already exists") from e
                base = name.rsplit("-", 1)[0]
                name = generate_name(base)  # a random suffix collided: draw again
                continue
            if dry_run:
                rollout = rollout_from_object(obj)
                return RolloutOutcome(rollout, rollout.model_dump_json().encode(), False)
            entry = self._rollouts.observe(obj)
            self._metrics.rollouts_created.labels(namespace).inc()
            log.info(
                "rollout %s/%s created over %d pods (maxUnavailable %d) by %s",
                namespace,
                name,
                len(plan),
                resolved,
                caller.name,
            )
            self._record(namespace, selection.involved, "create", name, caller, request, request_id)
            return RolloutOutcome(entry.rollout, entry.body, True)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _select(self, namespace: str, request: RolloutRequest) -> _Selection:
        if request.selector is not None:
            selector = request.selector.model_dump(exclude_none=True)
            check_selector(selector)
            pods = self._pods.matching(namespace, selector)
            if not pods:
                raise NoPodsSelected(f"the selector matches no pods in namespace {namespace}")
            involved = [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": p.name,
                    "uid": p.uid,
                }
                for p in pods
            ]
            return _Selection(pods, selector, None, involved, by_ordinal=False)

        assert request.target is not None  # _check_request
        kind = workload_kind(request.target.kind, request.target.apiVersion)
        workload = await self._workload(namespace, kind, request.target.name)
        workload_selector = (workload.get("spec") or {}).get("selector")
        if not isinstance(workload_selector, dict) or not (
            workload_selector.get("matchLabels") or workload_selector.get("matchExpressions")
        ):
            raise RequestInvalid(f"{kind.kind} {request.target.name} has no pod selector")
        selector = workload_selector
        owners = {str((workload.get("metadata") or {}).get("uid", ""))}
        if kind.owns_through_replicasets:
            owners = await self._replicasets_of(namespace, owners)
        pods = [p for p in self._pods.matching(namespace, selector) if p.controller_uid in owners]
        if not pods:
            raise NoPodsSelected(
                f"{kind.kind} {request.target.name} has no pods in namespace {namespace}"
            )
        uid = str((workload.get("metadata") or {}).get("uid", ""))
        target = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "name": request.target.name,
            "uid": uid,
        }
        involved = [{**target, "namespace": namespace}]
        return _Selection(pods, selector, target, involved, by_ordinal=kind.ordinal_order)

    async def _workload(self, namespace: str, kind: WorkloadKind, name: str) -> KubeObject:
        resource = Resource(kind.group, kind.version, kind.plural)
        try:
            return await to_thread.run_sync(self._kube.get_object, resource, namespace, name)
        except KubeNotFound as e:
            raise WorkloadNotFound(
                f"{kind.api_version} {kind.kind} {name} not found in namespace {namespace}"
            ) from e

    async def _replicasets_of(self, namespace: str, deployment_uids: set[str]) -> set[str]:
        """A Deployment's pods belong to its ReplicaSets: their uids."""
        listed = await to_thread.run_sync(lambda: self._kube.list_objects(REPLICASETS, namespace))
        return {
            str((rs.get("metadata") or {}).get("uid", ""))
            for rs in listed.items
            if controller_uid(rs) in deployment_uids
        }

    async def _resolve_existing(
        self,
        namespace: str,
        name: str,
        key_label: str,
        body_hash: str,
        error: KubeAlreadyExists,
    ) -> RolloutOutcome:
        """Another request (maybe on another replica) created ``name`` first."""
        try:
            obj = await to_thread.run_sync(self._kube.get_object, ROLLOUTS, namespace, name)
        except KubeNotFound:
            raise RolloutExists(f"rollout {name} already exists") from error
        if rollout_idempotency_label(obj) != key_label:
            raise RolloutExists(
                f"rollout {name} already exists and was not made with this Idempotency-Key"
            ) from error
        entry = self._rollouts.observe(obj)
        return _replay(entry, body_hash)

    # ---------------------------------------------------------------- pause, resume, cancel

    async def change(
        self,
        namespace: str,
        name: str,
        action: RolloutAction,
        *,
        caller: Caller,
        request_id: str | None = None,
    ) -> RolloutEntry:
        entry = self._rollouts.get(namespace, name)
        if entry is None or entry.deleted_at is not None:
            if not self._rollouts.synced(namespace):
                raise CacheNotReady("the rollout cache has not synced yet; retry shortly")
            raise RolloutNotFound(f"rollout {name} not found in namespace {namespace}")
        if entry.rollout.finished:
            raise RolloutFinished(
                f"rollout {name} has finished ({entry.rollout.phase}): nothing to {action}",
                extra={"phase": entry.rollout.phase},
            )
        patch = {
            "pause": {"spec": {"paused": True}},
            "resume": {"spec": {"paused": False}},
            "cancel": {"spec": {"cancelled": True}},
        }[action]
        try:
            obj = await to_thread.run_sync(
                self._kube.patch_object, ROLLOUTS, namespace, name, patch
            )
        except KubeNotFound as e:
            raise RolloutNotFound(f"rollout {name} not found in namespace {namespace}") from e
        entry = self._rollouts.observe(obj)
        log.info("rollout %s/%s: %s by %s", namespace, name, action, caller.name)
        involved = _involved_of(entry.object)
        self._record(namespace, involved, action, name, caller, None, request_id)
        return entry

    # ---------------------------------------------------------------- Events

    def _record(
        self,
        namespace: str,
        involved: list[KubeObject],
        action: str,
        rollout: str,
        caller: Caller,
        request: RolloutRequest | None,
        request_id: str | None = None,
    ) -> None:
        reason = request.reason if request is not None else None
        message = rollout_message(caller.name, action, rollout, reason, request_id or "-")
        for obj in involved:
            self._recorder.record(
                object_event(
                    obj,
                    reason=ROLLOUT_EVENT_REASONS[action],
                    message=message,
                    instance=INSTANCE,
                )
            )


def _check_request(request: RolloutRequest, max_active_deadline_seconds: int) -> None:
    if (request.target is None) == (request.selector is None):
        raise RequestInvalid(
            "give exactly one of target (a workload) and selector (a label selector)"
            + (", not both" if request.target is not None else "")
        )
    check_deadline(request, max_active_deadline_seconds)
    if request.containers is not None and not request.containers:
        raise RequestInvalid("containers is empty: omit containers to restart all of them")


def _restartable(
    pods: list[Pod], containers: list[str] | None
) -> tuple[list[Pod], list[tuple[Pod, str]]]:
    """The selected pods kruise would restart now, and the others with the reason (they are
    listed as Skipped): not running, not on a node, or a container not started yet."""
    plan: list[Pod] = []
    left_out: list[tuple[Pod, str]] = []
    for pod in pods:
        try:
            check_pod_restartable(pod)
        except PodNotRestartable as e:
            left_out.append((pod, e.detail))
            continue
        wanted = containers or pod.container_names
        started = pod.container_ids(wanted)
        missing = [c for c in wanted if c not in started]
        if missing:
            left_out.append((pod, f"container {', '.join(missing)} has not started yet"))
            continue
        plan.append(pod)
    return plan, left_out


def _replay(entry: RolloutEntry, body_hash: str) -> RolloutOutcome:
    if entry.request_hash != body_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key was used for rollout {entry.rollout.name} with a different "
            "request body",
            extra={"rollout": entry.rollout.name},
        )
    return RolloutOutcome(entry.rollout, entry.body, False)


def _involved_of(rollout: KubeObject) -> list[KubeObject]:
    """Where a rollout's Events go: its workload, or each pod of its plan."""
    meta = rollout.get("metadata") or {}
    namespace = str(meta.get("namespace", ""))
    spec = rollout.get("spec") or {}
    target = spec.get("target")
    if isinstance(target, dict):
        return [{**target, "namespace": namespace}]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": p.get("name"),
            "uid": p.get("uid"),
        }
        for p in spec.get("pods") or []
    ]
