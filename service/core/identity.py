"""Who is calling and what they ask to do: what authentication yields and everything after
it (authorization, the rate limit, audit, Events) reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from service.core.errors import CallerForbidden

Action = Literal["create", "delete", "get", "list", "watch"]
"""What a route does, named by the Kubernetes verb it needs by default (server-sent events
of one restart are a ``watch``)."""


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
    """What is kept and compared of a bearer token: never the token itself."""
    return hashlib.sha256(token.encode()).digest()


def forbidden(caller: Caller, namespace: str, what: str) -> CallerForbidden:
    # the same words whatever the target: nothing about the pod or restart
    return CallerForbidden(f"{caller.name} may not {what} in namespace {namespace}")
