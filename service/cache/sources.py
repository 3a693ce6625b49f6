"""What the caches list and watch, through the ``KubeAPI`` port: CRRs (whose version comes from
discovery) and any other resource by its coordinates."""

from __future__ import annotations

from service.cache.reflector import NotServed
from service.cache.scopes import WatchScope
from service.core.errors import KubeError, KubeNotFound
from service.kube.port import KubeAPI, ListResult, Resource, WatchStream


class CrrSource:
    """ContainerRecreateRequests, in the version discovery finds; every relist asks discovery
    again (kruise may have been upgraded or removed meanwhile)."""

    name = "restarts"

    def __init__(self, kube: KubeAPI) -> None:
        self._kube = kube

    def list(self, scope: WatchScope, *, relist: bool) -> ListResult:
        self._kube.crr_version(refresh=relist)
        return self._kube.list_crrs(scope)

    def watch(
        self, scope: WatchScope, resource_version: str, *, timeout_seconds: int
    ) -> WatchStream:
        return self._kube.watch_crrs(scope, resource_version, timeout_seconds=timeout_seconds)


class ResourceSource:
    """Any resource by its coordinates. A 404 on the list means the cluster does not serve
    the resource (a list in a namespace that does not exist answers an empty list): for an
    ``optional`` one that is :class:`NotServed` (nothing to hold), for any other an error that
    says which resource is missing."""

    def __init__(
        self, kube: KubeAPI, resource: Resource, *, name: str, optional: bool = False
    ) -> None:
        self._kube = kube
        self._resource = resource
        self._optional = optional
        self.name = name

    def list(self, scope: WatchScope, *, relist: bool) -> ListResult:
        try:
            return self._kube.list_objects(self._resource, scope)
        except KubeNotFound as e:
            served = f"{self._resource.group}/{self._resource.version}"
            if self._optional:
                raise NotServed(f"{self._resource.qualified} ({served})") from e
            raise KubeError(
                f"the cluster does not serve {self._resource.qualified} ({served}): is its "
                "CustomResourceDefinition installed?",
                reason=e.reason,
                code=e.code,
            ) from e

    def watch(
        self, scope: WatchScope, resource_version: str, *, timeout_seconds: int
    ) -> WatchStream:
        return self._kube.watch_objects(
            self._resource, scope, resource_version, timeout_seconds=timeout_seconds
        )
