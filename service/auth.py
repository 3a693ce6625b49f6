"""Who is calling, and may they (docs/auth.md).

Every ``/v1`` route depends on :func:`authorized` for its action. In order, before anything
about the target is looked up:

1. no ``Authorization: Bearer`` token: 401 (mode ``none`` skips authentication);
2. a namespace the service does not serve: 403, before any apiserver call;
3. authentication: a TokenReview (mode ``kubernetes``) or the tokens file (mode ``static``),
   else 401;
4. authorization: a SubjectAccessReview for the caller in the namespace (``kubernetes``) or
   the file's namespaces (``static``), else 403;
5. the per-caller rate limit (``service.guardrails``), else 429.

Reviews are cached briefly in bounded caches keyed by hashes (a token is never a key, never
logged), successes longer than failures, as Kubernetes' delegated authentication does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

import yaml
from anyio import to_thread
from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.audit import AuditRecord, request_id_of, start_audit
from service.config import ALL_NAMESPACES, Settings
from service.errors import (
    CacheNotReady,
    CallerForbidden,
    KubeForbidden,
    KubeUnavailable,
    NamespaceNotServed,
    Unauthenticated,
)
from service.guardrails import RateLimiter
from service.protocol import KubeAPI, KubeObject
from service.schemas import DNS1123_LABEL

log = logging.getLogger(__name__)

Action = Literal["create", "delete", "get", "list", "watch"]
"""What a route does, named by the Kubernetes verb it needs by default (server-sent events
of one restart are a ``watch``)."""

MAX_TOKEN_LENGTH = 16384
_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    groups: tuple[str, ...] = field(default=())
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    authenticated: bool = False
    namespaces: frozenset[str] | None = None
    """static mode: where the caller may act (``*``: every served namespace)."""

    def extra_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self.extra}


ANONYMOUS = Caller(name="anonymous")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# ------------------------------------------------------------------------------ caches

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A bounded LRU whose entries expire, each with its own TTL. Used from the event loop
    only (no locks)."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        hit = self._data.get(key)
        if hit is None:
            return False, None
        expires, value = hit
        if self._clock() >= expires:
            del self._data[key]
            return False, None
        self._data.move_to_end(key)
        return True, value

    def put(self, key: K, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        self._data[key] = (self._clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class SingleFlight(Generic[K, V]):
    """Concurrent misses for one key share one call: when a cached review expires under load,
    one review reaches the apiserver and the other requests await its answer."""

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[V]] = {}

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        task = self._calls.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # shielded: a caller that goes away does not cancel the review the others await
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every awaiter went away


# ------------------------------------------------------------------------------ authentication


async def _review(what: str, call: Callable[..., KubeObject], *args: Any) -> KubeObject:
    """Run a review in a thread. The service's own RBAC refusing the review is the service's
    problem (503), never the caller's 403, and its words stay in the log."""
    try:
        return await to_thread.run_sync(call, *args)
    except KubeForbidden as e:
        log.error("the service may not create %s: %s", what, e.detail)
        raise KubeUnavailable(
            f"the service cannot review callers now (it may not create {what})", code=e.code
        ) from e


def _caller_from_user(user: Mapping[str, Any]) -> Caller:
    extra_raw = user.get("extra") if isinstance(user.get("extra"), dict) else {}
    assert isinstance(extra_raw, dict)
    extra = tuple(
        sorted(
            (str(k), tuple(str(x) for x in v)) for k, v in extra_raw.items() if isinstance(v, list)
        )
    )
    groups = user.get("groups") if isinstance(user.get("groups"), list) else []
    assert isinstance(groups, list)
    return Caller(
        name=str(user.get("username") or ""),
        groups=tuple(str(g) for g in groups),
        uid=str(user.get("uid") or ""),
        extra=extra,
        authenticated=True,
    )


class KubernetesAuthenticator:
    """TokenReview through the service's own identity, for the configured audiences."""

    def __init__(self, kube: KubeAPI, settings: Settings) -> None:
        self._kube = kube
        self._audiences = tuple(settings.auth_audiences)
        self._ttl = settings.auth_cache_ttl_seconds
        self._failure_ttl = settings.auth_cache_failure_ttl_seconds
        self._cache: TTLCache[bytes, Caller | None] = TTLCache(settings.auth_cache_max_entries)
        self._flight: SingleFlight[bytes, Caller | None] = SingleFlight()

    async def authenticate(self, token: str) -> Caller:
        key = token_digest(token)
        found, caller = self._cache.get(key)
        if not found:
            caller = await self._flight.do(key, lambda: self._review(token, key))
        if caller is None:
            raise Unauthenticated("the bearer token is not valid", invalid_token=True)
        return caller

    async def _review(self, token: str, key: bytes) -> Caller | None:
        status = await _review("tokenreviews", self._kube.review_token, token, self._audiences)
        caller = self._accept(status)
        if caller is None:
            self._cache.put(key, None, self._failure_ttl)
            log.info("token rejected: %s", str(status.get("error") or "not authenticated")[:200])
            return None
        self._cache.put(key, caller, self._ttl)
        return caller

    def _accept(self, status: KubeObject) -> Caller | None:
        if status.get("authenticated") is not True:
            return None
        if self._audiences:
            granted = status.get("audiences")
            if not isinstance(granted, list) or not set(self._audiences) & set(granted):
                return None  # an authenticator that ignores audiences: not ours to trust
        user = status.get("user")
        if not isinstance(user, dict) or not user.get("username"):
            return None
        return _caller_from_user(user)


@dataclass(frozen=True, slots=True)
class _FileStamp:
    device: int
    inode: int
    mtime_ns: int
    size: int


def load_tokens_file(path: Path) -> list[tuple[bytes, Caller]]:
    """Parse a tokens file: a mapping of sha256(token) hex to ``{user, groups, namespaces}``.
    Raises ``ValueError`` naming the first problem (never a token: the file has none)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read tokens file {path}: {e}") from e
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ValueError(f"tokens file {path}: expected a mapping of sha256 hex to identities")
    table: list[tuple[bytes, Caller]] = []
    for raw_key, entry in document.items():
        key = str(raw_key).strip().lower()
        if len(key) != 64 or not set(key) <= _SHA256_HEX:
            raise ValueError(f"tokens file {path}: {str(raw_key)[:12]}... is not a sha256 hex")
        where = f"tokens file {path}, entry {key[:12]}..."
        if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
            raise ValueError(f"{where}: needs user")
        groups = entry.get("groups", [])
        namespaces = entry.get("namespaces", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{where}: groups must be a list of strings")
        if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
            raise ValueError(f"{where}: namespaces must be a list of strings")
        unknown = set(entry) - {"user", "groups", "namespaces"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        caller = Caller(
            name=entry["user"],
            groups=tuple(groups),
            authenticated=True,
            namespaces=frozenset(namespaces),
        )
        table.append((bytes.fromhex(key), caller))
    return table


class StaticAuthenticator:
    """Tokens from a file (a mounted Secret), compared by hash in constant time. The file is
    re-read when it changes (checked at most once per ``recheck_seconds``); a broken new
    version is logged and the last good one kept."""

    def __init__(
        self,
        path: Path,
        *,
        recheck_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._recheck = recheck_seconds
        self._clock = clock
        self._stamp = self._stat()
        self._table = load_tokens_file(path)  # fail at startup on a broken file
        self._checked = clock()
        log.info("static tokens file %s: %d identities", path, len(self._table))

    def _stat(self) -> _FileStamp | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return _FileStamp(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _maybe_reload(self) -> None:
        now = self._clock()
        if now - self._checked < self._recheck:
            return
        self._checked = now
        stamp = self._stat()
        if stamp == self._stamp or stamp is None:
            return
        try:
            table = load_tokens_file(self._path)
        except ValueError as e:
            log.error("keeping the previous tokens: %s", e)
            return
        self._stamp, self._table = stamp, table
        log.info("reloaded tokens file %s: %d identities", self._path, len(table))

    async def authenticate(self, token: str) -> Caller:
        self._maybe_reload()
        digest = token_digest(token)
        match: Caller | None = None
        for known, caller in self._table:  # every entry, whatever matches: constant time
            if hmac.compare_digest(known, digest):
                match = caller
        if match is None:
            raise Unauthenticated("the bearer token is not valid", invalid_token=True)
        return match


# ------------------------------------------------------------------------------ authorization


@dataclass(frozen=True, slots=True)
class ResourceAttributes:
    group: str
    resource: str
    subresource: str
    verb: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourceAttributes:
        return cls(
            settings.authz_group,
            settings.authz_resource,
            settings.authz_subresource,
            settings.authz_verb,
        )

    def verb_for(self, action: Action) -> str:
        return self.verb or action

    def describe(self, action: Action) -> str:
        resource = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb_for(action)} {resource}" + (f".{self.group}" if self.group else "")


def _forbidden(caller: Caller, namespace: str, what: str) -> CallerForbidden:
    # the same words whatever the target: nothing about the pod or restart
    return CallerForbidden(f"{caller.name} may not {what} in namespace {namespace}")


class KubernetesAuthorizer:
    """SubjectAccessReview of the caller's user, groups, uid and extra in the namespace.
    The object's name is not sent: rights limited by resourceNames do not grant access."""

    def __init__(self, kube: KubeAPI, settings: Settings) -> None:
        self._kube = kube
        self._attributes = ResourceAttributes.from_settings(settings)
        self._ttl = settings.authz_cache_ttl_seconds
        self._denied_ttl = settings.authz_cache_denied_ttl_seconds
        self._cache: TTLCache[bytes, bool] = TTLCache(settings.auth_cache_max_entries)
        self._flight: SingleFlight[bytes, bool] = SingleFlight()

    def spec(self, caller: Caller, namespace: str, action: Action) -> KubeObject:
        attributes = self._attributes
        resource: KubeObject = {
            "namespace": namespace,
            "verb": attributes.verb_for(action),
            "group": attributes.group,
            "resource": attributes.resource,
        }
        if attributes.subresource:
            resource["subresource"] = attributes.subresource
        return {
            "user": caller.name,
            "uid": caller.uid,
            "groups": list(caller.groups),
            "extra": caller.extra_dict(),
            "resourceAttributes": resource,
        }

    async def _review(self, spec: KubeObject, key: bytes) -> bool:
        status = await _review("subjectaccessreviews", self._kube.review_access, spec)
        allowed = status.get("allowed") is True and status.get("denied") is not True
        self._cache.put(key, allowed, self._ttl if allowed else self._denied_ttl)
        return allowed

    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None:
        spec = self.spec(caller, namespace, action)
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).digest()
        found, allowed = self._cache.get(key)
        if not found:
            allowed = await self._flight.do(key, lambda: self._review(spec, key))
        if not allowed:
            raise _forbidden(caller, namespace, self._attributes.describe(action))


class StaticAuthorizer:
    """The tokens file's namespaces decide, for every action."""

    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None:
        allowed = caller.namespaces or frozenset()
        if namespace not in allowed and ALL_NAMESPACES not in allowed:
            raise _forbidden(caller, namespace, f"{action} restarts")


class _AllowAll:
    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None:
        return None


class _Anonymous:
    async def authenticate(self, token: str) -> Caller:
        return ANONYMOUS


# ------------------------------------------------------------------------------ the facade


class Auth:
    """What the routes' dependency asks: built once per app (``build_auth``)."""

    def __init__(
        self,
        settings: Settings,
        authenticate: Callable[[str], Awaitable[Caller]],
        authorize: Callable[[Caller, str, Action], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.required = settings.auth_mode != "none"
        self.authenticate = authenticate
        self.authorize = authorize
        self.limiter = RateLimiter(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            max_callers=settings.auth_cache_max_entries,
        )


def build_auth(settings: Settings, kube: KubeAPI) -> Auth:
    """The authenticator and authorizer of ``settings.auth_mode``. Raises ``ValueError`` on a
    broken tokens file."""
    if settings.auth_mode == "kubernetes":
        return Auth(
            settings,
            KubernetesAuthenticator(kube, settings).authenticate,
            KubernetesAuthorizer(kube, settings).authorize,
        )
    if settings.auth_mode == "static":
        assert settings.auth_tokens_file is not None  # the settings validate it
        return Auth(
            settings,
            StaticAuthenticator(settings.auth_tokens_file).authenticate,
            StaticAuthorizer().authorize,
        )
    log.warning("auth_mode none: every caller is anonymous and allowed (development only)")
    return Auth(settings, _Anonymous().authenticate, _AllowAll().authorize)


# ------------------------------------------------------------------------------ the dependency

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A Kubernetes service-account token (TokenReview; ideally audience-scoped "
    "to crr-gateway) or a token from the service's tokens file. See docs/auth.md.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
NamespaceParam = Annotated[
    str,
    PathParam(
        min_length=1, max_length=63, pattern=DNS1123_LABEL, description="Kubernetes namespace"
    ),
]


@dataclass(slots=True)
class Call:
    """An authorized request: who, its request id, and (creates and deletes) its audit
    record, which the route completes."""

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


def _authorizing(action: Action) -> Callable[..., Awaitable[Call]]:
    audited = action in ("create", "delete")

    async def dependency(
        request: Request, namespace: NamespaceParam, credentials: BearerDep
    ) -> Call:
        auth: Auth | None = getattr(request.app.state, "auth", None)
        if auth is None:
            raise CacheNotReady("the service is starting")
        settings = auth.settings
        token = _token(credentials) if auth.required else ""
        if not settings.serves(namespace):
            raise NamespaceNotServed(f"namespace {namespace} is not served by this service")
        caller = await auth.authenticate(token)
        request_id = request_id_of(request)
        record = None
        if audited:
            record = await start_audit(request, action, namespace, caller, request_id)
        await auth.authorize(caller, namespace, action)
        if action == "create" or settings.rate_limit_all_requests:
            auth.limiter.take(caller.name)
        return Call(caller, request_id, record)

    dependency.__name__ = f"authorize_{action}"
    return dependency


_DEPENDENCIES: dict[Action, Callable[..., Awaitable[Call]]] = {
    action: _authorizing(action) for action in ("create", "delete", "get", "list", "watch")
}


def authorized(action: Action) -> Any:
    """``Depends`` for a route doing ``action`` (one function per action, so FastAPI can
    reuse its result within a request)."""
    return Depends(_DEPENDENCIES[action])


CreateCall = Annotated[Call, authorized("create")]
DeleteCall = Annotated[Call, authorized("delete")]
ReadCall = Annotated[Call, authorized("get")]
ListCall = Annotated[Call, authorized("list")]
WatchCall = Annotated[Call, authorized("watch")]
