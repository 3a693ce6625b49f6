"""The health of one cache's watched scopes: which have synced (their first list landed), which
are healthy (the last list succeeded and the watch has not broken since), and since when a
scope has been unhealthy (the stale warning). Readiness is every scope synced and healthy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

WatchScope = str | None  # a namespace, or None for every namespace


@dataclass(slots=True)
class _ScopeState:
    synced: bool = False  # the first list has landed
    healthy: bool = False  # the last list succeeded and the watch has not broken since
    error: str | None = None
    unhealthy_since: datetime | None = None  # wall clock of the first failure since healthy


class ScopeHealth:
    """Per-scope state of one cache; touched on the event loop only."""

    def __init__(self, scopes: Sequence[WatchScope]) -> None:
        self._state = {scope: _ScopeState() for scope in scopes}

    @property
    def scopes(self) -> list[WatchScope]:
        return list(self._state)

    def _serving(self, namespace: str) -> _ScopeState | None:
        return self._state.get(None) or self._state.get(namespace)

    @property
    def ready(self) -> bool:
        return all(s.synced and s.healthy for s in self._state.values())

    def synced(self, namespace: str) -> bool:
        state = self._serving(namespace)
        return state is not None and state.synced

    def stale_since(self, namespace: str) -> datetime | None:
        """When the watch serving ``namespace`` lost the apiserver (None while it is live):
        the cache still answers, but changes since then are not in it yet."""
        state = self._serving(namespace)
        if state is None or not state.synced or state.healthy:
            return None
        return state.unhealthy_since

    def status(self) -> dict[str, dict[str, object]]:
        return {
            (scope or "*"): {"synced": s.synced, "healthy": s.healthy, "error": s.error}
            for scope, s in self._state.items()
        }

    def listed(self, scope: WatchScope) -> None:
        state = self._state[scope]
        state.synced = True
        state.healthy = True
        state.error = None
        state.unhealthy_since = None

    def failed(self, scope: WatchScope, error: str, since: datetime) -> None:
        state = self._state[scope]
        if state.healthy or state.unhealthy_since is None:
            state.unhealthy_since = since
        state.healthy = False
        state.error = error


def served_scopes(all_namespaces: bool, namespaces: Sequence[str]) -> list[WatchScope]:
    """One cluster-wide scope, or one per served namespace."""
    return [None] if all_namespaces else list(namespaces)
