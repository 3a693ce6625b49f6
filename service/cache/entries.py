"""One restart as the cache holds it: parsed once, encoded once, ready to serve."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from service.core.objects import KubeObject, metadata
from service.core.reading import (
    DELETED_MESSAGE,
    crr_idempotency_label,
    crr_request_hash,
    restart_from_crr,
)
from service.core.rollouts import ROLLOUT_LABEL
from service.core.schemas import Restart

Key = tuple[str, str]  # (namespace, name)


@dataclass(slots=True, frozen=True)
class Entry:
    """One restart, ready to serve: its JSON, encoded once, and the few fields the cache's
    reads filter on. The ``Restart`` model is read back from the JSON when asked for (creates,
    deletes, the rollout controller): kept whole, it cost four times the bytes it serves
    (BENCHMARKS.md, "Memory"). The strings every restart of a namespace or a pod repeats are
    interned, so thousands of entries share one copy."""

    body: bytes  # the Restart encoded as JSON, once
    namespace: str
    name: str
    pod: str
    resource_version: str
    finished: bool
    deleted_at: float | None  # monotonic time the CRR was seen deleted (a tombstone)
    request_hash: str | None
    idempotency: str | None
    rollout: str | None = None  # the rollout that made it (its CRR's crr-gateway.io/rollout)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def restart(self) -> Restart:
        """The restart, read back from ``body`` (a new object each time: never shared)."""
        return Restart.model_validate_json(self.body)

    @staticmethod
    def of(
        restart: Restart,
        *,
        deleted_at: float | None,
        request_hash: str | None,
        idempotency: str | None,
        rollout: str | None,
    ) -> Entry:
        return Entry(
            body=restart.model_dump_json().encode(),
            namespace=sys.intern(restart.namespace),
            name=restart.name,
            pod=sys.intern(restart.pod),
            resource_version=restart.resourceVersion,
            finished=restart.finished,
            deleted_at=deleted_at,
            request_hash=request_hash,
            idempotency=idempotency,
            rollout=sys.intern(rollout) if rollout is not None else None,
        )


def crr_rollout(obj: KubeObject) -> str | None:
    labels = metadata(obj).get("labels")
    value = labels.get(ROLLOUT_LABEL) if isinstance(labels, dict) else None
    return value if isinstance(value, str) and value else None


def make_entry(obj: KubeObject, *, deleted_at: float | None = None) -> Entry:
    restart = restart_from_crr(obj, deleted=deleted_at is not None)
    return Entry.of(
        restart,
        deleted_at=deleted_at,
        request_hash=crr_request_hash(obj),
        idempotency=crr_idempotency_label(obj),
        rollout=crr_rollout(obj),
    )


def tombstone_of(entry: Entry, now: float) -> Entry:
    """The entry of a restart whose CRR was deleted with no final object to read: its last
    state, finished (and failed, if it had not finished)."""
    restart = entry.restart
    if not restart.finished:
        restart = restart.model_copy(
            update={
                "finished": True,
                "result": "Failed",
                "failureReason": "Deleted",
                "message": DELETED_MESSAGE,
            }
        )
    return Entry.of(
        restart,
        deleted_at=now,
        request_hash=entry.request_hash,
        idempotency=entry.idempotency,
        rollout=entry.rollout,
    )
