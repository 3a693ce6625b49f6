"""Every dependency of the routes, once: the app's services, the path parameters, and the
authorized request of each action.

The authorized request runs, in order, before anything about the target is looked up
(docs/auth.md):

1. no ``Authorization: Bearer`` token: 401 (mode ``none`` skips authentication);
2. authentication (``service.auth``): a TokenReview or the tokens file, else 401;
3. a namespace the service does not serve: 403, before any access review;
4. authorization: a SubjectAccessReview or the tokens file's namespaces, else 403;
5. the per-caller rate limit (``service.core.guardrails``), else 429.

Authentication comes before the namespace check so that a caller without a valid token gets
the same 401 everywhere and cannot map which namespaces are served.

Creates and deletes open their audit record (``service.http.audit``) once the caller is
known, so a denied request is audited too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth.facade import Auth
from service.cache.budgets import BudgetCache
from service.cache.caches import Caches
from service.cache.pods import PodCache
from service.cache.rollouts import RolloutCache
from service.cache.store import RestartCache
from service.config import Settings
from service.core.errors import CacheNotReady, NamespaceNotServed, Unauthenticated
from service.core.identity import Action, Caller
from service.core.schemas import DNS1123_LABEL, DNS1123_SUBDOMAIN
from service.http.audit import AuditRecord, request_id_of, start_audit
from service.metrics import Metrics
from service.operations import RestartOperations
from service.rollouts.operations import RolloutOperations

MAX_TOKEN_LENGTH = 16384
# printable ASCII (RFC 9110 visible characters and space): never a control character
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"

# ---------------------------------------------------------------- the app's services


@dataclass(frozen=True, slots=True)
class AppServices:
    """What the routes need, built by the app's lifespan and kept in ``app.state``."""

    settings: Settings
    cache: RestartCache
    operations: RestartOperations
    metrics: Metrics
    rollouts: RolloutCache
    rollout_operations: RolloutOperations
    pods: PodCache
    budgets: BudgetCache
    caches: Caches  # all four watch caches (restarts, pods, rollouts, budgets), for readiness


def services_of(request: Request) -> AppServices | None:
    """The running app's services; None until the lifespan has started them."""
    services: AppServices | None = getattr(request.app.state, "services", None)
    return services


async def get_services(request: Request) -> AppServices:
    services = services_of(request)
    if services is None:
        raise CacheNotReady("the service is starting")
    return services


ServicesDep = Annotated[AppServices, Depends(get_services)]

# ---------------------------------------------------------------- path parameters

NamespacePath = Annotated[
    str,
    Path(min_length=1, max_length=63, pattern=DNS1123_LABEL, description="Kubernetes namespace"),
]
NamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
        description="restart name (a DNS-1123 subdomain, as every Kubernetes object name)",
    ),
]
RolloutNamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description="rollout name (a DNS-1123 label)",
    ),
]

# ---------------------------------------------------------------- query and header parameters
# The restarts and the rollouts routes read these the same way: one declaration each, so the
# two resources cannot drift apart in what they accept or in how openapi.yaml describes it.

MAX_WAIT_SECONDS = 60  # a long poll's bound (the fast path refuses to answer beyond it too)
WaitQuery = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="seconds to wait for a change from resourceVersion (or from the current "
        "state) unless it has finished",
    ),
]
ResourceVersionQuery = Annotated[
    str | None,
    Query(alias="resourceVersion", max_length=64, description="the version you have"),
]
PageLimitQuery = Annotated[int, Query(ge=1, le=500, description="page size")]
ContinueQuery = Annotated[
    str | None, Query(alias="continue", max_length=1024, description="from the last page")
]
ResumeHeader = Annotated[
    str | None, Header(alias="Last-Event-ID", max_length=64, description="resume")
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="the same key with the same body answers what its first request made "
        "(printable ASCII)",
    ),
]

# ---------------------------------------------------------------- callers

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A Kubernetes service-account token (TokenReview; ideally audience-scoped "
    "to crr-gateway) or a token from the service's tokens file. See docs/auth.md.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(slots=True)
class AuthorizedRequest:
    """A request that passed authentication, authorization and the rate limit: who, its
    request id, and (creates and deletes) its audit record, which the route completes."""

    caller: Caller
    request_id: str
    audit: AuditRecord | None


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise Unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    token = credentials.credentials.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii() or " " in token:
        raise Unauthenticated("the bearer token is not valid", invalid_token=True)
    return token


def _authorizing(
    action: Action, audit_as: str | None = None
) -> Callable[..., Awaitable[AuthorizedRequest]]:
    """The dependency of a route that needs ``action`` on CRRs in the namespace (a rollout's
    create, pause, resume and cancel need "create", as a restart does), audited as
    ``audit_as`` (restart creates and deletes, and every rollout change)."""
    if audit_as is None and action in ("create", "delete"):
        audit_as = action

    async def dependency(
        request: Request, namespace: NamespacePath, credentials: BearerDep
    ) -> AuthorizedRequest:
        auth: Auth | None = getattr(request.app.state, "auth", None)
        if auth is None:
            raise CacheNotReady("the service is starting")
        settings = auth.settings
        token = _token(credentials) if auth.required else ""
        caller = await auth.authenticate(token)  # first: a 401 says nothing about namespaces
        if not settings.serves(namespace):
            raise NamespaceNotServed(f"namespace {namespace} is not served by this service")
        request_id = request_id_of(request)
        record = None
        if audit_as is not None:
            record = await start_audit(request, audit_as, namespace, caller, request_id)
        await auth.authorize(caller, namespace, action)
        if action == "create" or settings.rate_limit_all_requests:
            auth.limiter.take(caller.name)
        return AuthorizedRequest(caller, request_id, record)

    dependency.__name__ = f"authorize_{(audit_as or action).replace('.', '_')}"
    return dependency


_DEPENDENCIES: dict[str, Callable[..., Awaitable[AuthorizedRequest]]] = {
    **{action: _authorizing(action) for action in ("create", "delete", "get", "list", "watch")},
    **{
        f"rollout.{change}": _authorizing("create", f"rollout.{change}")
        for change in ("create", "pause", "resume", "cancel")
    },
}


def authorized(action: str) -> Any:
    """``Depends`` for a route doing ``action`` (one function per action, so FastAPI can
    reuse its result within a request)."""
    return Depends(_DEPENDENCIES[action])


AuthorizedCreate = Annotated[AuthorizedRequest, authorized("create")]
AuthorizedDelete = Annotated[AuthorizedRequest, authorized("delete")]
AuthorizedGet = Annotated[AuthorizedRequest, authorized("get")]
AuthorizedList = Annotated[AuthorizedRequest, authorized("list")]
AuthorizedWatch = Annotated[AuthorizedRequest, authorized("watch")]
AuthorizedRolloutCreate = Annotated[AuthorizedRequest, authorized("rollout.create")]
AuthorizedRolloutPause = Annotated[AuthorizedRequest, authorized("rollout.pause")]
AuthorizedRolloutResume = Annotated[AuthorizedRequest, authorized("rollout.resume")]
AuthorizedRolloutCancel = Annotated[AuthorizedRequest, authorized("rollout.cancel")]
