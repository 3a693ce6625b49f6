"""The facade the HTTP layer asks: who the caller is (``authenticate``), whether they may
(``authorize``), and the per-caller rate limit, built once per app for the configured mode."""

from __future__ import annotations

import logging
from typing import Protocol

from service.auth.kube_reviews import KubernetesAuthenticator, KubernetesAuthorizer
from service.auth.static_tokens import StaticAuthenticator, StaticAuthorizer
from service.config import Settings
from service.core.guardrails import RateLimiter
from service.core.identity import ANONYMOUS, Action, Caller
from service.kube.port import KubeAPI

log = logging.getLogger(__name__)


class _AllowAll:
    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None:
        return None

    def recall(self, caller: Caller, namespace: str, action: Action) -> bool:
        return True


class _Anonymous:
    async def authenticate(self, token: str) -> Caller:
        return ANONYMOUS

    def recall(self, token: str) -> Caller | None:
        return ANONYMOUS


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Caller: ...

    def recall(self, token: str) -> Caller | None: ...


class Authorizer(Protocol):
    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None: ...

    def recall(self, caller: Caller, namespace: str, action: Action) -> bool: ...


class Auth:
    """What the routes' dependency asks: built once per app (``build_auth``)."""

    def __init__(
        self, settings: Settings, authenticator: Authenticator, authorizer: Authorizer
    ) -> None:
        self.settings = settings
        self.required = settings.auth_mode != "none"
        self.authenticate = authenticator.authenticate
        self.authorize = authorizer.authorize
        self._recall_caller = authenticator.recall
        self._recall_access = authorizer.recall
        self.limiter = RateLimiter(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            max_callers=settings.auth_cache_max_entries,
        )

    def recall(self, token: str, namespace: str, action: Action) -> Caller | None:
        """The caller when ``authenticate`` and ``authorize`` would both pass from memory
        alone right now (the token's and the access's reviews cached, or a tokens file);
        None when either is not known without asking the apiserver, or is a refusal. For
        ``service.http.fast_reads``, which then answers without the routes' dependency."""
        caller = self._recall_caller(token)
        if caller is None or not self._recall_access(caller, namespace, action):
            return None
        return caller


def build_auth(settings: Settings, kube: KubeAPI) -> Auth:
    """The authenticator and authorizer of ``settings.auth_mode``. Raises ``ValueError`` on a
    broken tokens file."""
    if settings.auth_mode == "kubernetes":
        return Auth(
            settings, KubernetesAuthenticator(kube, settings), KubernetesAuthorizer(kube, settings)
        )
    if settings.auth_mode == "static":
        assert settings.auth_tokens_file is not None  # the settings validate it
        return Auth(settings, StaticAuthenticator(settings.auth_tokens_file), StaticAuthorizer())
    log.warning("auth_mode none: every caller is anonymous and allowed (development only)")
    return Auth(settings, _Anonymous(), _AllowAll())
