"""The rollout cache: every ``RestartRollout`` of the served scopes, read once into the API's
``Rollout`` and encoded once, with the object itself for the controller's next write. Same
machinery as the restart cache (``keyed.KeyedStore``): resourceVersion order, tombstones for
the retention, waiters for long polls and event streams, subscribers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from service.cache.keyed import Key, KeyedStore
from service.cache.sources import ResourceSource
from service.config import Settings
from service.core.objects import KubeObject
from service.core.rollout_object import (
    rollout_from_object,
    rollout_idempotency_label,
    rollout_request_hash_of,
)
from service.core.rollout_schemas import Rollout
from service.kube.port import ROLLOUTS, KubeAPI
from service.metrics import Metrics


@dataclass(slots=True, frozen=True)
class RolloutEntry:
    """One rollout, ready to serve and to step."""

    rollout: Rollout
    body: bytes  # rollout encoded as JSON, once
    object: KubeObject  # the RestartRollout as last seen, without metadata.managedFields
    deleted_at: float | None  # monotonic time it was seen deleted (a tombstone)
    request_hash: str | None
    idempotency: str | None

    @property
    def key(self) -> Key:
        return (self.rollout.namespace, self.rollout.name)

    @property
    def resource_version(self) -> str:
        return self.rollout.resourceVersion


def make_rollout_entry(obj: KubeObject, *, deleted_at: float | None = None) -> RolloutEntry:
    """The entry of a ``RestartRollout``. ``managedFields`` is dropped: it is the bulk of the
    object, nothing reads it, and a write built from ``object`` must not carry it back."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = {
            **obj,
            "metadata": {k: v for k, v in metadata.items() if k != "managedFields"},
        }
    rollout = rollout_from_object(obj)
    return RolloutEntry(
        rollout=rollout,
        body=rollout.model_dump_json().encode(),
        object=obj,
        deleted_at=deleted_at,
        request_hash=rollout_request_hash_of(obj),
        idempotency=rollout_idempotency_label(obj),
    )


class RolloutCache(KeyedStore[RolloutEntry]):
    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            ResourceSource(kube, ROLLOUTS, name="rollouts"), settings, metrics, clock=clock
        )

    def active(self) -> list[RolloutEntry]:
        """Every rollout not finished and not deleted, in every served namespace, by
        namespace and name."""
        return sorted(
            (e for e in self.entries() if e.deleted_at is None and not e.rollout.finished),
            key=lambda e: e.key,
        )

    def _decode(self, obj: KubeObject, deleted_at: float | None) -> RolloutEntry:
        return make_rollout_entry(obj, deleted_at=deleted_at)

    def _tombstone_of(self, entry: RolloutEntry, now: float) -> RolloutEntry:
        return replace(entry, deleted_at=now)
