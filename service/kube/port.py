"""The port: what the rest of the service asks of Kubernetes, as a small protocol.

``service.kube.adapter.KubeClient`` implements it with the official client; tests implement
it with fakes. Every method blocks (run it in a thread) and raises only
``service.core.errors.KubeError`` subclasses (or ``KruiseMissing``). Objects are plain JSON
dicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple, Protocol, TypedDict
from urllib.parse import quote

from service.core.errors import KubeInvalid
from service.core.objects import KubeObject


def path_segment(value: str) -> str:
    """One path segment. "." and ".." are refused: urllib3 removes dot segments, so a name
    "." would turn a DELETE of one object into a DELETE of the whole collection."""
    if value in ("", ".", ".."):
        raise KubeInvalid(f"{value!r} is not a valid object name")
    return quote(value, safe="")


class Resource(NamedTuple):
    """Where a kind of object lives in the API: group (``""`` for the core group), version
    and plural, as in the URL."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of the collection (in ``namespace``, or across every namespace when
        None) or of one object in it."""
        path = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            path += f"/namespaces/{path_segment(namespace)}"
        path += f"/{self.plural}"
        if name is not None:
            path += f"/{path_segment(name)}"
        return path

    @property
    def qualified(self) -> str:
        """``plural.group`` as kubectl names it (``pods``, ``poddisruptionbudgets.policy``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("", "v1", "pods")
REPLICASETS = Resource("apps", "v1", "replicasets")
PDBS = Resource("policy", "v1", "poddisruptionbudgets")
PUBS = Resource("policy.kruise.io", "v1alpha1", "podunavailablebudgets")
ROLLOUTS = Resource("crr-gateway.io", "v1alpha1", "restartrollouts")


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

    def delete_crr(
        self, namespace: str, name: str, *, resource_version: str | None = None
    ) -> KubeObject:
        """Delete and return the object as the apiserver last saw it (or a ``Status``).
        ``resource_version``: only if it is still that version (else ``KubeConflict``)."""
        ...

    def list_crrs(self, namespace: str | None) -> ListResult:
        """All CRRs in ``namespace`` (``None``: every namespace), paginated internally."""
        ...

    def watch_crrs(
        self, namespace: str | None, resource_version: str, *, timeout_seconds: int
    ) -> WatchStream: ...

    # ------------------------------------------------------------ any resource, raw JSON

    def get_object(self, resource: Resource, namespace: str, name: str) -> KubeObject: ...

    def list_objects(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> ListResult:
        """Every object of ``resource`` in ``namespace`` (``None``: every namespace) that
        ``label_selector`` selects, paginated internally."""
        ...

    def watch_objects(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int,
    ) -> WatchStream: ...

    def create_object(
        self, resource: Resource, namespace: str, body: KubeObject, *, dry_run: bool = False
    ) -> KubeObject: ...

    def replace_object(
        self, resource: Resource, namespace: str, name: str, body: KubeObject
    ) -> KubeObject:
        """PUT ``body``; its ``metadata.resourceVersion`` is the precondition: a stale one
        raises ``KubeConflict``."""
        ...

    def patch_object(
        self, resource: Resource, namespace: str, name: str, patch: KubeObject
    ) -> KubeObject:
        """A JSON merge patch (RFC 7386)."""
        ...

    def delete_object(self, resource: Resource, namespace: str, name: str) -> KubeObject:
        """Delete and return the object as the apiserver last saw it (or a ``Status``)."""
        ...

    # ------------------------------------------------------------ callers and audit

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
