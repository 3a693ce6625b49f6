"""Our exception hierarchy. The adapter translates Kubernetes errors into these once
(``service.kube.translate``); the rules raise the domain ones; the web layer renders each
base class as problem+json (``service.http.problems``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

PROBLEM_BASE = "urn:crr-gateway:problem:"


class GatewayError(Exception):
    """Base of every error we answer deliberately. ``status``/``slug``/``title`` are per
    class; ``detail`` and ``extra`` members are per instance."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


# ---------------------------------------------------------------- client errors (ours)


class ClientError(GatewayError):
    """The request cannot be served as asked (4xx)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"


class NotFoundError(ClientError):
    status = 404
    slug = "not-found"
    title = "Not found"


class PodNotFound(NotFoundError):
    slug = "pod-not-found"
    title = "Pod not found"


class RestartNotFound(NotFoundError):
    slug = "restart-not-found"
    title = "Restart not found"


class RolloutNotFound(NotFoundError):
    slug = "rollout-not-found"
    title = "Rollout not found"


class WorkloadNotFound(NotFoundError):
    slug = "workload-not-found"
    title = "Workload not found"


class ConflictError(ClientError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PodNotRestartable(ConflictError):
    slug = "pod-not-restartable"
    title = "Pod cannot be restarted now"


class RestartPolicyNever(PodNotRestartable):
    """kruise's webhook lets such a pod through; the killed container is never started again
    and the restart hangs until its deadline. A pod that cannot be restarted, so 409."""

    slug = "restart-policy-never"
    title = "The pod's containers would not start again"


class ContainerNotStarted(ConflictError):
    slug = "container-not-started"
    title = "Container has no containerID yet"


class RestartInProgress(ConflictError):
    slug = "restart-in-progress"
    title = "A restart is already active on this pod"


class RestartExists(ConflictError):
    slug = "restart-exists"
    title = "A restart with this name already exists"


class RolloutExists(ConflictError):
    slug = "rollout-exists"
    title = "A rollout with this name already exists"


class RolloutOverlaps(ConflictError):
    slug = "rollout-overlaps"
    title = "An active rollout already covers some of these pods"


class RolloutFinished(ConflictError):
    slug = "rollout-finished"
    title = "The rollout has finished"


class UnprocessableError(ClientError):
    status = 422
    slug = "unprocessable"
    title = "Unprocessable request"


class RequestInvalid(UnprocessableError):
    slug = "invalid-request"
    title = "Invalid request"


class UnknownContainers(UnprocessableError):
    slug = "unknown-containers"
    title = "Unknown containers"

    def __init__(self, detail: str, *, unknown: Sequence[str], valid: Sequence[str]) -> None:
        super().__init__(
            detail, extra={"unknownContainers": list(unknown), "validContainers": list(valid)}
        )


class DuplicateContainers(UnprocessableError):
    slug = "duplicate-containers"
    title = "Duplicate containers"

    def __init__(self, detail: str, *, duplicates: Sequence[str]) -> None:
        super().__init__(detail, extra={"duplicateContainers": list(duplicates)})


class IdempotencyKeyReused(UnprocessableError):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class NoPodsSelected(UnprocessableError):
    slug = "no-pods-selected"
    title = "No pods to restart"


class ForbiddenError(ClientError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NamespaceNotServed(ForbiddenError):
    slug = "namespace-not-served"
    title = "Namespace not served"


# ---------------------------------------------------------------- callers (service.auth)


class Unauthenticated(ClientError):
    """No bearer token, or one that does not authenticate. Says nothing about the target."""

    status = 401
    slug = "unauthenticated"
    title = "Unauthenticated"

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        challenge = 'Bearer realm="crr-gateway"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class CallerForbidden(ForbiddenError):
    """The caller may not do this in the namespace (decided before anything is looked up,
    so it never tells whether the pod or restart exists)."""

    slug = "caller-forbidden"
    title = "Caller not allowed"


class TooManyRequestsError(ClientError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(
        self, detail: str, *, retry_after: int, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail, extra=extra, headers={"Retry-After": str(max(1, retry_after))})


class RateLimited(TooManyRequestsError):
    slug = "rate-limited"
    title = "Caller rate limit exceeded"


class ActiveRestartsCapped(TooManyRequestsError):
    slug = "too-many-active-restarts"
    title = "Too many active restarts in the namespace"


class TooManyStreams(TooManyRequestsError):
    slug = "too-many-streams"
    title = "Too many watch streams open for the caller"


# ---------------------------------------------------------------- service side


class UnavailableError(GatewayError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"


class KruiseMissing(UnavailableError):
    slug = "openkruise-missing"
    title = "OpenKruise is missing"


class KruiseLagging(UnavailableError):
    """kruise's webhook has not seen the pod yet (it reads pods from its informer cache)."""

    slug = "openkruise-lagging"
    title = "OpenKruise has not caught up yet"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class CacheNotReady(UnavailableError):
    slug = "cache-not-ready"
    title = "Restart cache not synced yet"


# ---------------------------------------------------------------- Kubernetes (from the adapter)


class KubeError(GatewayError):
    """An error answered by (or on the way to) the apiserver. ``reason`` is the apiserver's
    ``Status.reason`` when there is one. Subclasses put the domain base first so its
    ``status`` wins; a bare ``KubeError`` is an unexpected answer (502)."""

    status = 502
    slug = "kube-error"
    title = "Unexpected answer from Kubernetes"

    def __init__(
        self,
        detail: str,
        *,
        reason: str = "",
        code: int = 0,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, extra=extra, headers=headers)
        self.reason = reason
        self.code = code


class KubeNotFound(NotFoundError, KubeError):
    slug = "kube-not-found"
    title = "Not found in Kubernetes"


class KubeConflict(ConflictError, KubeError):
    slug = "kube-conflict"
    title = "Conflict in Kubernetes"


class KubeAlreadyExists(KubeConflict):
    slug = "kube-already-exists"
    title = "Already exists in Kubernetes"


class KubeInvalid(UnprocessableError, KubeError):
    """400/422 from the apiserver or an admission webhook: the message says why."""

    slug = "kube-rejected"
    title = "Rejected by Kubernetes"


class KubeForbidden(ForbiddenError, KubeError):
    slug = "kube-forbidden"
    title = "Forbidden by Kubernetes"


class KubeGone(KubeError):
    """410: a resourceVersion too old to watch from. Internal to the cache."""

    status = 503
    slug = "kube-gone"
    title = "Resource version expired"


class KubeTooManyRequests(KubeError):
    status = 429
    slug = "kube-throttled"
    title = "Kubernetes is throttling"


class KubeUnavailable(UnavailableError, KubeError):
    """Connection refused/reset, TLS failure, 5xx, or our credentials were rejected."""

    slug = "kube-unavailable"
    title = "Kubernetes API unavailable"


class KubeTimeout(KubeError):
    status = 504
    slug = "kube-timeout"
    title = "Kubernetes API timed out"
