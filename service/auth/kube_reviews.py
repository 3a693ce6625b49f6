"""Mode ``kubernetes``: the apiserver decides. A TokenReview authenticates the caller (for
the configured audiences), a SubjectAccessReview authorizes it in the namespace; both go
through the service's own identity and are cached (``service.auth.caching``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from service.auth.caching import SingleFlight, TTLCache
from service.config import Settings
from service.core.errors import KubeForbidden, KubeUnavailable, Unauthenticated
from service.core.identity import Action, Caller, forbidden, token_digest
from service.core.objects import KubeObject
from service.kube.port import KubeAPI

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ authentication


async def _run_review(what: str, call: Callable[..., KubeObject], *args: Any) -> KubeObject:
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

    def recall(self, token: str) -> Caller | None:
        """The caller when the token's acceptance is cached now; None when it is not known
        from memory (or was refused): the caller must then ``authenticate``."""
        found, caller = self._cache.get(token_digest(token))
        return caller if found else None

    async def _review(self, token: str, key: bytes) -> Caller | None:
        status = await _run_review("tokenreviews", self._kube.review_token, token, self._audiences)
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


# ------------------------------------------------------------------------------ authorization


AccessKey = tuple[Caller, str, Action]  # who, in which namespace, doing what


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


class KubernetesAuthorizer:
    """SubjectAccessReview of the caller's user, groups, uid and extra in the namespace.
    The object's name is not sent: rights limited by resourceNames do not grant access."""

    def __init__(self, kube: KubeAPI, settings: Settings) -> None:
        self._kube = kube
        self._attributes = ResourceAttributes.from_settings(settings)
        self._ttl = settings.authz_cache_ttl_seconds
        self._denied_ttl = settings.authz_cache_denied_ttl_seconds
        # keyed by the whole identity, the namespace and the action: what decides the review
        # (the spec is built from them and the fixed attributes), hashed without encoding it
        self._cache: TTLCache[AccessKey, bool] = TTLCache(settings.auth_cache_max_entries)
        self._flight: SingleFlight[AccessKey, bool] = SingleFlight()

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

    async def _review(self, spec: KubeObject, key: AccessKey) -> bool:
        status = await _run_review("subjectaccessreviews", self._kube.review_access, spec)
        allowed = status.get("allowed") is True and status.get("denied") is not True
        self._cache.put(key, allowed, self._ttl if allowed else self._denied_ttl)
        return allowed

    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None:
        key = (caller, namespace, action)
        found, allowed = self._cache.get(key)
        if not found:
            spec = self.spec(caller, namespace, action)
            allowed = await self._flight.do(key, lambda: self._review(spec, key))
        if not allowed:
            raise forbidden(caller, namespace, self._attributes.describe(action))

    def recall(self, caller: Caller, namespace: str, action: Action) -> bool:
        """Whether an allowed answer for this access is cached now (False: not known from
        memory, or denied; the caller must then ``authorize``)."""
        found, allowed = self._cache.get((caller, namespace, action))
        return found and allowed is True
