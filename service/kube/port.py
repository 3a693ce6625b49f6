"""The port: what the rest of the service asks of Kubernetes, as a small protocol.

``service.kube.adapter.KubeClient`` implements it with the official client; tests implement
it with fakes. Every method blocks (run it in a thread) and raises only
``service.core.errors.KubeError`` subclasses (or ``KruiseMissing``). Objects are plain JSON
dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple, Protocol, TypedDict

from service.core.objects import KubeObject


class WatchEvent(TypedDict):
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]
    object: KubeObject


class ListResult(NamedTuple):
    items: list[KubeObject]
    resource_version: str


class WatchStream(Protocol):
    """An open watch: iterate to get events (blocks); ``close()`` from another thread
    unblocks the reader, which then sees the iteration end or raise."""

    def __iter__(self) -> Iterator[WatchEvent]: ...

    def close(self) -> None: ...


class KubeAPI(Protocol):
    def crr_version(self, *, refresh: bool = False) -> str:
        """The ``apps.kruise.io`` version to use for CRRs, from discovery (cached unless
        ``refresh``). Raises ``KruiseMissing`` when the cluster serves no CRRs."""
        ...

    def get_pod(self, namespace: str, name: str) -> KubeObject: ...

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject: ...

    def get_crr(self, namespace: str, name: str) -> KubeObject: ...

    def delete_crr(self, namespace: str, name: str) -> KubeObject:
        """Delete and return the object as the apiserver last saw it (or a ``Status``)."""
        ...

    def list_crrs(self, namespace: str | None) -> ListResult:
        """All CRRs in ``namespace`` (``None``: every namespace), paginated internally."""
        ...

    def watch_crrs(
        self, namespace: str | None, resource_version: str, *, timeout_seconds: int
    ) -> WatchStream: ...

    def review_token(self, token: str, audiences: Sequence[str]) -> KubeObject:
        """A TokenReview of ``token`` (for ``audiences``; empty: the apiserver's own).
        Returns its ``status`` (``authenticated``, ``user``, ``audiences``, ``error``)."""
        ...

    def review_access(self, spec: KubeObject) -> KubeObject:
        """A SubjectAccessReview with ``spec``. Returns its ``status`` (``allowed``,
        ``denied``, ``reason``)."""
        ...

    def create_event(self, namespace: str, body: KubeObject) -> KubeObject:
        """Create a core/v1 Event."""
        ...

    def close(self) -> None: ...
