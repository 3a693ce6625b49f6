"""Which pods a rollout takes, in which order, and how many may be unavailable at once: the
workload kinds it targets, Kubernetes label-selector semantics, the budget and the disruption
budgets (PodDisruptionBudget, OpenKruise PodUnavailableBudget) it honours. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.core.errors import RequestInvalid
from service.core.objects import KubeObject
from service.core.pods import Pod, ordinal

# ------------------------------------------------------------------ workload kinds


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """A kind a rollout may target, and how to find its pods."""

    api_version: str
    kind: str
    plural: str
    ordinal_order: bool  # StatefulSet-like: pods restart from the highest ordinal down
    owns_through_replicasets: bool = False  # Deployment: pods belong to its ReplicaSets

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


WORKLOAD_KINDS: tuple[WorkloadKind, ...] = (
    WorkloadKind("apps/v1", "Deployment", "deployments", False, owns_through_replicasets=True),
    WorkloadKind("apps/v1", "StatefulSet", "statefulsets", True),
    WorkloadKind("apps/v1", "DaemonSet", "daemonsets", False),
    WorkloadKind("apps/v1", "ReplicaSet", "replicasets", False),
    WorkloadKind("apps.kruise.io/v1alpha1", "CloneSet", "clonesets", False),
    WorkloadKind("apps.kruise.io/v1beta1", "StatefulSet", "statefulsets", True),
    WorkloadKind("apps.kruise.io/v1alpha1", "StatefulSet", "statefulsets", True),
    WorkloadKind("apps.kruise.io/v1alpha1", "DaemonSet", "daemonsets", False),
)
DEFAULT_API_VERSIONS = {"CloneSet": "apps.kruise.io/v1alpha1"}  # otherwise apps/v1


def workload_kind(kind: str, api_version: str | None) -> WorkloadKind:
    """The supported kind named by ``kind``/``apiVersion`` (apiVersion defaults to apps/v1,
    or to OpenKruise's for CloneSet); 422 naming the supported ones otherwise."""
    wanted = api_version or DEFAULT_API_VERSIONS.get(kind, "apps/v1")
    for candidate in WORKLOAD_KINDS:
        if candidate.kind == kind and candidate.api_version == wanted:
            return candidate
    supported = ", ".join(f"{k.api_version} {k.kind}" for k in WORKLOAD_KINDS)
    raise RequestInvalid(
        f"cannot roll out {wanted} {kind}: supported kinds are {supported}",
        extra={"supportedKinds": [f"{k.api_version}/{k.kind}" for k in WORKLOAD_KINDS]},
    )


# ------------------------------------------------------------------ label selectors

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_selector(selector: Mapping[str, Any], *, what: str = "selector") -> None:
    """Refuse a selector the apiserver would refuse, and an empty one (it would select every
    pod of the namespace: say so explicitly instead)."""
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not labels and not expressions:
        raise RequestInvalid(
            f"{what} selects every pod of the namespace: give matchLabels or matchExpressions"
        )
    for expression in expressions:
        operator = expression.get("operator")
        values = expression.get("values") or []
        if operator not in _OPERATORS:
            raise RequestInvalid(
                f"{what}: operator {operator!r} is not one of {', '.join(_OPERATORS)}"
            )
        if operator in ("In", "NotIn") and not values:
            raise RequestInvalid(f"{what}: operator {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise RequestInvalid(f"{what}: operator {operator} takes no values")


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: every matchLabels pair and every expression."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key", "")
        operator = expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


# ------------------------------------------------------------------ the budget

_PERCENT = re.compile(r"^([0-9]{1,3})%$")


def resolve_max_unavailable(value: int | str, selected: int) -> int:
    """An integer >= 1 as is; ``"N%"`` of the selected pods rounded down, at least 1."""
    if isinstance(value, bool):
        raise RequestInvalid("maxUnavailable must be an integer >= 1 or a percentage such as 25%")
    if isinstance(value, int):
        if value < 1:
            raise RequestInvalid(f"maxUnavailable must be at least 1, not {value}")
        return value
    match = _PERCENT.match(value.strip())
    if match is None:
        raise RequestInvalid(
            f"maxUnavailable {value!r} is neither an integer nor a percentage such as 25%"
        )
    percent = int(match.group(1))
    if not 1 <= percent <= 100:
        raise RequestInvalid(f"maxUnavailable {value!r} must be between 1% and 100%")
    return max(1, selected * percent // 100)


def _scaled(value: int | str, total: int) -> int:
    """A PodDisruptionBudget's int-or-percent, as the disruption controller reads it
    (percentages round up)."""
    if isinstance(value, int):
        return value
    match = _PERCENT.match(str(value).strip())
    if match is None:
        return 0
    return -(-total * int(match.group(1)) // 100)


@dataclass(frozen=True, slots=True)
class DisruptionBudget:
    """A PodDisruptionBudget or OpenKruise PodUnavailableBudget, reduced to what counts."""

    kind: str
    name: str
    selector: Mapping[str, Any]
    min_available: int | str | None = None
    max_unavailable: int | str | None = None

    def selects(self, pod: Pod) -> bool:
        return selector_matches(self.selector, pod.labels)

    def allowance(self, pods: Iterable[Pod], unavailable: set[str]) -> int:
        """How many more of its pods may become unavailable now, computed as the disruption
        controller would from current readiness (no controller does it here, and CRRs are
        not evictions). ``unavailable`` names pods to count as unavailable whatever their
        condition says (restarts already started)."""
        mine = [p for p in pods if self.selects(p)]
        expected = len(mine)
        healthy = sum(1 for p in mine if p.ready and p.name not in unavailable)
        if self.max_unavailable is not None:
            desired = expected - _scaled(self.max_unavailable, expected)
        elif self.min_available is not None:
            desired = _scaled(self.min_available, expected)
        else:
            return expected
        return healthy - max(0, desired)


def disruption_budget(kind: str, obj: KubeObject) -> DisruptionBudget | None:
    """A ``policy/v1`` PodDisruptionBudget or ``policy.kruise.io`` PodUnavailableBudget with a
    label selector (a PUB's ``targetRef`` form is not read: see docs/rollouts.md)."""
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return None
    return DisruptionBudget(
        kind=kind,
        name=str((obj.get("metadata") or {}).get("name", "")),
        selector=selector,
        min_available=spec.get("minAvailable"),
        max_unavailable=spec.get("maxUnavailable"),
    )


# ------------------------------------------------------------------ the plan


def order_plan(pods: Sequence[Pod], *, by_ordinal: bool) -> list[Pod]:
    """The restart order: pods already unavailable first (restarting them costs no
    availability), then StatefulSet-like pods from the highest ordinal down, others by name."""

    def key(pod: Pod) -> tuple[int, int, str]:
        name = pod.name
        return (1 if pod.ready else 0, -ordinal(name) if by_ordinal else 0, name)

    return sorted(pods, key=key)


def check_containers(pods: Sequence[Pod], containers: Sequence[str] | None) -> None:
    """Every named container must exist in every selected pod; 422 naming the pods without."""
    if containers is None:
        return
    if not containers:
        raise RequestInvalid("containers is empty: omit containers to restart all of them")
    duplicates = sorted({c for c in containers if list(containers).count(c) > 1})
    if duplicates:
        raise RequestInvalid(f"containers names {', '.join(duplicates)} more than once")
    missing: dict[str, list[str]] = {}
    for pod in pods:
        names = set(pod.container_names)
        absent = [c for c in containers if c not in names]
        if absent:
            missing[pod.name] = absent
    if missing:
        listed = "; ".join(f"{pod}: {', '.join(c)}" for pod, c in sorted(missing.items()))
        raise RequestInvalid(
            f"containers missing from {len(missing)} of the selected pods ({listed})",
            extra={"podsMissingContainers": {k: v for k, v in sorted(missing.items())}},
        )
