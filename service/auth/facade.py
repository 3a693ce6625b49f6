"""The facade the HTTP layer asks: who the caller is (``authenticate``), whether they may
(``authorize``), and the per-caller rate limit, built once per app for the configured mode."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

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


class _Anonymous:
    async def authenticate(self, token: str) -> Caller:
        return ANONYMOUS


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
