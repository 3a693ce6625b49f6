"""The rollout half of the public contract (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.core.schemas import DNS1123_LABEL, INT32_MAX, ObjectName, RestartStrategyFields

RolloutName = Annotated[str, Field(min_length=1, max_length=52, pattern=DNS1123_LABEL)]
LabelValue = Annotated[str, Field(max_length=63)]
PodStateName = Literal["Waiting", "Restarting", "Succeeded", "Failed", "Skipped", "Gone"]
RolloutPhaseName = Literal["Progressing", "Paused", "Succeeded", "Failed", "Cancelled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Model):
    kind: str = Field(
        min_length=1,
        max_length=63,
        description="Deployment, StatefulSet, DaemonSet, ReplicaSet (apps/v1), CloneSet, or "
        "OpenKruise's StatefulSet and DaemonSet (with their apiVersion)",
    )
    name: ObjectName
    apiVersion: str | None = Field(
        default=None,
        max_length=253,
        description="default apps/v1 (apps.kruise.io/v1alpha1 for CloneSet)",
    )


class SelectorRequirement(_Model):
    key: str = Field(min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = Field(default=None, max_length=256)


class LabelSelector(_Model):
    matchLabels: dict[str, LabelValue] | None = Field(default=None, max_length=64)
    matchExpressions: list[SelectorRequirement] | None = Field(default=None, max_length=64)


class RolloutRequest(RestartStrategyFields):
    """Body of ``POST /v1/namespaces/{namespace}/rollouts``: exactly one of ``target`` and
    ``selector``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    target: Target | None = Field(default=None, description="the workload whose pods restart")
    selector: LabelSelector | None = Field(
        default=None, description="or: the pods this label selector matches"
    )
    containers: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None,
        max_length=256,
        description="containers to recreate in each pod; absent means all of them",
    )
    maxUnavailable: int | str = Field(
        default=1,
        description="at most this many selected pods unavailable at once, counting those "
        'already unavailable: an integer >= 1 or a percentage such as "25%" '
        "(rounded down, at least 1)",
    )
    minReadySeconds: int = Field(
        default=0,
        ge=0,
        le=INT32_MAX,
        description="a restarted pod counts as available again once Ready this long",
    )
    pauseOnFailure: bool = Field(
        default=True, description="pause when a pod's restart fails (false: go on)"
    )
    name: RolloutName | None = Field(
        default=None, description="name of the rollout; generated when absent"
    )
    reason: str | None = Field(default=None, max_length=256, description="why; recorded")


class RolloutPod(_Model):
    pod: str
    state: PodStateName
    restart: str | None = Field(description="its restart, also readable under /restarts")
    message: str


class RolloutCounts(_Model):
    Waiting: int
    Restarting: int
    Succeeded: int
    Failed: int
    Skipped: int
    Gone: int


class Rollout(_Model):
    """A rollout: the one representation every rollout endpoint returns."""

    name: str
    namespace: str
    target: Target | None
    selector: LabelSelector | None
    containers: list[str] | None
    maxUnavailable: int | str
    resolvedMaxUnavailable: int
    minReadySeconds: int
    pauseOnFailure: bool
    phase: RolloutPhaseName
    finished: bool
    paused: bool
    pods: list[RolloutPod] = Field(description="in restart order")
    counts: RolloutCounts
    unavailable: int = Field(description="selected pods not available now (budget spent)")
    message: str = Field(description="why it waits, why it paused or how it ended")
    createdAt: datetime | None
    completedAt: datetime | None
    requestedBy: str | None
    reason: str | None
    resourceVersion: str


class RolloutList(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    items: list[Rollout]
    continue_: str | None = Field(
        default=None,
        alias="continue",
        description="pass as ?continue= to get the next page; null on the last page",
    )
