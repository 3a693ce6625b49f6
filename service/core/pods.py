"""A pod as the rules read it: a small immutable record built once from the apiserver's object
(:meth:`Pod.from_object`), whether the pod came from the pod cache or from a GET, so every rule
reads one representation. It holds only what a rule reads (service/core/rules.py, rollouts.py,
selection.py, rollout_object.py, the rollout controller and the create path); anything else in
the pod (annotations, images, ports, creationTimestamp, the containers' ready, restartCount and
started, the other conditions...) is dropped. Lenient: a missing or mistyped field reads as
empty, as the rules read the dicts before.

Memory (issue 11: at most 1 KiB per cached pod): the parts many pods repeat (a workload's spec
and owner, label sets, conditions that changed in the same second, container names, common
strings) go through ``share`` (the pod cache's ``Shared``), so the pods that have them hold one
copy; what stays per pod is its name, uid, resourceVersion and container IDs."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, Protocol, TypeVar

from service.core.crr import SIDECAR_TERMINATED
from service.core.objects import KubeObject, dict_items, section

_T = TypeVar("_T")


class Interner(Protocol):
    """Hands back the one copy of ``part`` (found by ``key``, or by ``part`` itself when it is
    hashable) that other pods already hold, or keeps ``part`` as that copy."""

    def __call__(self, part: _T, key: Hashable | None = None) -> _T: ...


def unshared(part: _T, key: Hashable | None = None) -> _T:
    """No sharing: every pod its own parts (a pod read once, in tests)."""
    return part


@dataclass(frozen=True, slots=True)
class Container:
    """A container of ``spec.containers``: its name, and the initial delays of its startup and
    readiness probes (0 without), which hold a new container unready at least that long."""

    name: str
    startup_delay: int = 0
    readiness_delay: int = 0


@dataclass(frozen=True, slots=True)
class PodSpec:
    """What the rules read of ``spec``; the same for every pod of a workload on one node."""

    node_name: str = ""  # "" until the pod is scheduled
    restart_policy: str = ""
    readiness_gates: tuple[str, ...] = ()  # their conditionTypes
    termination_grace_period: int | None = None  # None when missing or not a number >= 0
    containers: tuple[Container, ...] = ()


@dataclass(frozen=True, slots=True)
class PodConditions:
    """What the rules read of ``status.conditions``: the first Ready condition, and whether
    kruise's sidecar-terminated condition is there (whatever its status).

    ``ready_since`` is the Ready condition's lastTransitionTime exactly as the apiserver wrote
    it (a string, parsed when read): it compares and prints as it came, and a whole record is
    shared by the pods that became ready in the same second, which a float per pod would not
    make smaller."""

    ready: bool = False  # a Ready condition with status "True"
    ready_since: str = ""  # its lastTransitionTime ("" when not ready)
    sidecar_terminated: bool = False


@dataclass(frozen=True, slots=True)
class Owner:
    """The pod's controller ownerReference: the kind and uid of the object that controls it."""

    kind: str
    uid: str


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod as the rules read it (never changed: cached pods are shared with every reader).

    The container statuses are held in two parallel parts: their names (one tuple shared by
    the pods of a workload) and their containerIDs ("" for a container not started yet), the
    only part of a status that is the pod's own and the largest part of a cached pod. When
    every ID is the runtime's usual ``<runtime>://<64 hex digits>``, one runtime for all,
    ``status_ids`` packs them into one ``bytes`` (the runtime, then each digest's 32 bytes):
    a third of the two strings and their tuple. Otherwise it is the tuple of the strings.
    Read them through :meth:`container_ids` and :meth:`container_id`."""

    name: str
    namespace: str
    uid: str  # "" when missing
    resource_version: str
    labels: Mapping[str, str]
    controller: Owner | None
    deleting: bool  # metadata.deletionTimestamp is set
    spec: PodSpec
    phase: str
    conditions: PodConditions
    status_names: tuple[str, ...]
    status_ids: tuple[str, ...] | bytes

    @classmethod
    def from_object(cls, obj: KubeObject, share: Interner = unshared) -> Pod:
        """The record of a pod object as the apiserver gives it (a list or watch item, or a
        GET's answer)."""
        meta = section(obj, "metadata")
        status = section(obj, "status")
        statuses = dict_items(status, "containerStatuses")
        return cls(
            name=str(meta.get("name", "")),
            namespace=share(str(meta.get("namespace", ""))),
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion", "")),
            labels=_labels(meta.get("labels"), share),
            controller=_controller(meta, share),
            deleting=bool(meta.get("deletionTimestamp")),
            spec=_spec(section(obj, "spec"), share),
            phase=share(_text(status.get("phase"))),
            conditions=_conditions(status, share),
            status_names=share(tuple(share(str(s.get("name", ""))) for s in statuses)),
            status_ids=_pack_ids([str(s.get("containerID") or "") for s in statuses]),
        )

    # ------------------------------------------------------------ what the rules read

    @property
    def ready(self) -> bool:
        """Ready, and not being deleted."""
        return self.conditions.ready and not self.deleting

    def ready_since(self) -> datetime | None:
        """When it became Ready (None when not Ready or the time does not parse)."""
        return parse_time(self.conditions.ready_since) if self.conditions.ready else None

    @property
    def container_names(self) -> list[str]:
        """The names in ``spec.containers``, in order."""
        return [c.name for c in self.spec.containers]

    @property
    def controller_uid(self) -> str | None:
        return self.controller.uid if self.controller is not None else None

    def container_ids(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """The containerID of each started container (of ``names`` only, when given)."""
        wanted = set(names) if names is not None else None
        return {
            name: cid
            for name, cid in zip(self.status_names, self._ids(), strict=True)
            if cid and (wanted is None or name in wanted)
        }

    def container_id(self, name: str) -> str | None:
        """The containerID in ``name``'s status ("" when it has none yet), or None when the
        pod has no status for ``name``."""
        found: str | None = None
        for status_name, cid in zip(self.status_names, self._ids(), strict=True):
            if status_name == name:
                found = cid  # the last one wins, as a dict of the statuses by name would
        return found

    def _ids(self) -> tuple[str, ...]:
        ids = self.status_ids
        return ids if isinstance(ids, tuple) else _unpack_ids(ids, len(self.status_names))


_NO_LABELS: Mapping[str, str] = {}
_DIGEST = 32  # bytes of a container ID's 64 hex digits


def _pack_ids(ids: list[str]) -> tuple[str, ...] | bytes:
    runtimes = {cid[: len(cid) - 2 * _DIGEST] for cid in ids}
    if len(runtimes) != 1:
        return tuple(ids)
    (runtime,) = runtimes
    if not runtime.endswith("://") or not runtime.isascii():
        return tuple(ids)
    try:
        digests = [bytes.fromhex(cid[len(runtime) :]) for cid in ids]
    except ValueError:
        return tuple(ids)
    packed = runtime.encode() + b"".join(digests)
    # only what reads back exactly (lowercase hex, 32 bytes each) is packed
    return packed if _unpack_ids(packed, len(ids)) == tuple(ids) else tuple(ids)


def _unpack_ids(packed: bytes, count: int) -> tuple[str, ...]:
    start = len(packed) - _DIGEST * count
    runtime = packed[:start].decode()
    return tuple(
        runtime + packed[start + i * _DIGEST : start + (i + 1) * _DIGEST].hex()
        for i in range(count)
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _seconds(value: object) -> int | None:
    """A number of seconds as Kubernetes gives it (an integer >= 0), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _labels(value: object, share: Interner) -> Mapping[str, str]:
    if not isinstance(value, dict) or not value:
        return _NO_LABELS
    # keys and values shared too: a workload's pods differ in one label at most (a CloneSet's
    # instance id), and each decoded pod has its own strings. The set is found by its pairs
    # in order (the apiserver writes a map's keys sorted), as one flat tuple: the smallest key
    labels = {share(str(k)): share(str(v)) for k, v in value.items()}
    return share(labels, tuple(chain.from_iterable(labels.items())))


def _controller(meta: dict[str, Any], share: Interner) -> Owner | None:
    for owner in dict_items(meta, "ownerReferences"):
        if owner.get("controller"):
            return share(Owner(str(owner.get("kind", "")), str(owner.get("uid", ""))))
    return None


def _container(container: dict[str, Any], share: Interner) -> Container:
    def delay(probe: str) -> int:
        return _seconds(section(container, probe).get("initialDelaySeconds")) or 0

    return Container(
        share(str(container.get("name"))), delay("startupProbe"), delay("readinessProbe")
    )


def _spec(spec: dict[str, Any], share: Interner) -> PodSpec:
    node = spec.get("nodeName")
    return share(
        PodSpec(
            node_name=share(str(node)) if node else "",
            restart_policy=_text(spec.get("restartPolicy")),
            readiness_gates=tuple(
                str(g.get("conditionType")) for g in dict_items(spec, "readinessGates")
            ),
            termination_grace_period=_seconds(spec.get("terminationGracePeriodSeconds")),
            containers=tuple(_container(c, share) for c in dict_items(spec, "containers")),
        )
    )


def _conditions(status: dict[str, Any], share: Interner) -> PodConditions:
    conditions = dict_items(status, "conditions")
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    is_ready = ready is not None and ready.get("status") == "True"
    return share(
        PodConditions(
            ready=is_ready,
            ready_since=_text(ready.get("lastTransitionTime")) if is_ready and ready else "",
            sidecar_terminated=any(c.get("type") == SIDECAR_TERMINATED for c in conditions),
        )
    )


def pod_identity(pod: Pod) -> tuple[str, str, str]:
    """(namespace, name, resourceVersion): how the pod cache files a pod."""
    return pod.namespace, pod.name, pod.resource_version


def ordinal(name: str) -> int:
    """A StatefulSet pod's ordinal (``web-3`` -> 3); -1 when the name has none."""
    head, _, tail = name.rpartition("-")
    return int(tail) if head and tail.isdigit() else -1


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
