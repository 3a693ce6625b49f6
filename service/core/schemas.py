"""The public contract: request and response models (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
INT32_MAX = 2**31 - 1

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]

FailurePolicy = Literal["Fail", "Ignore"]
Phase = Literal["Pending", "Recreating", "Completed"]
Result = Literal["Succeeded", "Failed"]
FailureReason = Literal[
    "DeadlineExceeded",
    "PodGone",
    "DaemonNotResponding",
    "KillError",
    "ContainerFailed",
    "Deleted",
    "Unknown",
]

DEFAULT_FAILURE_POLICY: FailurePolicy = "Fail"
DEFAULT_ORDERED_RECREATE = False
DEFAULT_UNREADY_GRACE_PERIOD_SECONDS = 3
DEFAULT_ACTIVE_DEADLINE_SECONDS = 300
DEFAULT_TTL_SECONDS_AFTER_FINISHED = 1800
MIN_ACTIVE_DEADLINE_SECONDS = 3  # kruise's webhook refuses less


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestartStrategyFields(_Model):
    """How kruise recreates a pod's containers: the fields a restart and a rollout share (a
    rollout applies them to each pod's restart), with the service's default strategy."""

    failurePolicy: FailurePolicy = Field(
        default=DEFAULT_FAILURE_POLICY,
        description="Fail: stop at the first container that fails; Ignore: go on",
    )
    orderedRecreate: bool = Field(
        default=DEFAULT_ORDERED_RECREATE, description="recreate one container after another"
    )
    unreadyGracePeriodSeconds: int = Field(
        default=DEFAULT_UNREADY_GRACE_PERIOD_SECONDS,
        ge=0,
        le=INT32_MAX,
        description="seconds the pod is kept unready before the kill "
        "(only effective with the KruisePodReady readiness gate)",
    )
    activeDeadlineSeconds: int = Field(
        default=DEFAULT_ACTIVE_DEADLINE_SECONDS,
        ge=MIN_ACTIVE_DEADLINE_SECONDS,
        le=INT32_MAX,
        description="the restart fails when not done this many seconds after creation "
        "(at most the configured maximum)",
    )
    ttlSecondsAfterFinished: int = Field(
        default=DEFAULT_TTL_SECONDS_AFTER_FINISHED,
        ge=0,
        le=INT32_MAX,
        description="kruise deletes the finished restart after this many seconds",
    )
    terminationGracePeriodSeconds: int | None = Field(
        default=None, ge=0, le=INT32_MAX, description="default: the pod's"
    )
    minStartedSeconds: int | None = Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description="a new container counts as started after running this long",
    )
    forceRecreate: bool | None = Field(
        default=None, description="kill even while the container is still starting"
    )


class RestartRequest(RestartStrategyFields):
    """Body of ``POST /v1/namespaces/{namespace}/restarts``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pod: ObjectName = Field(description="name of the pod whose containers are recreated")
    containers: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="container names; absent means every container in spec.containers. An "
        "empty list is refused (422), so a caller's filter that came out empty never restarts "
        "the whole pod",
    )
    name: ObjectName | None = Field(
        default=None, description="name of the restart; generated from the pod name when absent"
    )
    reason: str | None = Field(
        default=None, max_length=256, description="why; recorded on the restart"
    )

    @field_validator("containers", mode="before")
    @classmethod
    def _refuse_no_containers(cls, value: object) -> object:
        # before the length check, to say what to do instead of "at least 1 item"
        if isinstance(value, list) and not value:
            raise PydanticCustomError(
                "empty_containers", "containers is empty: omit containers to restart all of them"
            )
        return value


class Strategy(_Model):
    failurePolicy: FailurePolicy | str
    orderedRecreate: bool
    forceRecreate: bool
    unreadyGracePeriodSeconds: int | None
    terminationGracePeriodSeconds: int | None
    minStartedSeconds: int


class ContainerState(_Model):
    name: str
    phase: str
    isKilled: bool
    message: str | None


class Restart(_Model):
    """A restart: the one representation every endpoint returns."""

    name: str
    namespace: str
    pod: str
    podUID: str | None
    node: str | None
    containers: list[str]
    strategy: Strategy
    activeDeadlineSeconds: int | None
    ttlSecondsAfterFinished: int | None
    phase: Phase
    finished: bool
    result: Result | None = Field(
        description="null until finished; Succeeded only when every container succeeded"
    )
    failureReason: FailureReason | None
    message: str | None
    containerStates: list[ContainerState]
    createdAt: datetime | None
    completedAt: datetime | None
    requestedBy: str | None
    reason: str | None
    warnings: list[str]
    resourceVersion: str
    apiVersion: str = Field(description="the ContainerRecreateRequest version it was read with")


class RestartList(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    items: list[Restart]
    continue_: str | None = Field(
        default=None,
        alias="continue",
        description="pass as ?continue= to get the next page; null on the last page",
    )


class Problem(BaseModel):
    """RFC 9457 problem details; some problems carry extra members."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
