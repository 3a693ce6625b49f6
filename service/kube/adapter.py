"""The adapter: ``KubeAPI`` over the official client, the only module that imports
``kubernetes``.

It speaks raw JSON through the official client's transport (no generated model classes on
any path), and translates every failure once into ``service.core.errors``
(``service.kube.translate``), chained ``from`` the transport error. Every method blocks;
callers run them in threads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import OpenApiException

from service.core.crr import CRR_GROUP, CRR_PLURAL, CRR_VERSIONS_PREFERRED
from service.core.errors import KruiseMissing, KubeError, KubeNotFound, KubeUnavailable
from service.core.objects import KubeObject
from service.kube.port import PODS, ListResult, Resource
from service.kube.translate import translate_status, transport_error
from service.kube.watch import HttpWatchStream

log = logging.getLogger(__name__)

USER_AGENT = "crr-gateway/0.1"
_LIST_PAGE = 500
_WATCH_READ_SLACK_SECONDS = 30
EVENTS = Resource("", "v1", "events")


class KubeClient:
    """``service.kube.port.KubeAPI`` over the official client's configuration and transport."""

    def __init__(
        self,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        request_timeout: float = 10.0,
        pool_size: int = 32,
    ) -> None:
        configuration = k8s_client.Configuration()
        if kubeconfig is not None:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call, unused-ignore]
                config_file=str(kubeconfig),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call, unused-ignore]
                client_configuration=configuration
            )
        configuration.connection_pool_maxsize = pool_size
        # fail fast: retry a refused/reset connection once, never a request that was sent
        configuration.retries = urllib3.Retry(
            total=2, connect=1, read=0, redirect=0, status=0, other=0, backoff_factor=0.1
        )
        self._api = k8s_client.ApiClient(configuration)
        self._api.user_agent = USER_AGENT
        self._timeout = request_timeout
        self._version: str | None = None
        self._version_lock = threading.Lock()

    # ------------------------------------------------------------ transport

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: KubeObject | None = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        what: str,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            method_, url, header_params, body_, _ = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            answer = self._api.call_api(
                method_, url, header_params, body_, None, _request_timeout=timeout or self._timeout
            )
        except OpenApiException as e:  # the client's own TLS/serialization failures
            raise KubeUnavailable(f"{what}: {e}") from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise transport_error(e, what) from e
        response: urllib3.BaseHTTPResponse = answer.response
        if 200 <= response.status < 300:
            return response
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise transport_error(e, what) from e
        finally:
            response.release_conn()
        raise translate_status(response.status, data, response.headers, response.reason or "")

    def _json(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: KubeObject | None = None,
        content_type: str = "application/json",
        what: str,
    ) -> KubeObject:
        response = self._open(
            method, path, query=query, body=body, content_type=content_type, what=what
        )
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise transport_error(e, what) from e
        finally:
            response.release_conn()
        try:
            decoded = json.loads(data)
        except ValueError as e:
            raise KubeError(f"{what}: undecodable answer from the apiserver") from e
        if not isinstance(decoded, dict):
            raise KubeError(f"{what}: unexpected answer from the apiserver")
        return decoded

    # ------------------------------------------------------------ discovery

    def crr_version(self, *, refresh: bool = False) -> str:
        with self._version_lock:
            if self._version is not None and not refresh:
                return self._version
        version = self._discover()
        with self._version_lock:
            if version != self._version:
                log.info("using %s/%s for %s", CRR_GROUP, version, CRR_PLURAL)
            self._version = version
        return version

    def _discover(self) -> str:
        what = "discovering OpenKruise"
        try:
            group = self._json("GET", f"/apis/{CRR_GROUP}", what=what)
        except KubeNotFound as e:
            raise KruiseMissing(
                f"OpenKruise is missing: the cluster does not serve the {CRR_GROUP} API group"
            ) from e
        served = {str(v.get("version")) for v in group.get("versions", []) if isinstance(v, dict)}
        for version in CRR_VERSIONS_PREFERRED:
            if version not in served:
                continue
            try:
                resources = self._json("GET", f"/apis/{CRR_GROUP}/{version}", what=what)
            except KubeNotFound:
                continue
            names = {r.get("name") for r in resources.get("resources", []) if isinstance(r, dict)}
            if CRR_PLURAL in names:
                return version
        raise KruiseMissing(
            f"OpenKruise is missing: the cluster serves no {CRR_PLURAL}.{CRR_GROUP} "
            f"(looked for {', '.join(CRR_VERSIONS_PREFERRED)})"
        )

    def _crr_path(self, namespace: str | None, name: str | None = None) -> str:
        return Resource(CRR_GROUP, self.crr_version(), CRR_PLURAL).path(namespace, name)

    # ------------------------------------------------------------ objects

    def get_pod(self, namespace: str, name: str) -> KubeObject:
        return self._json(
            "GET",
            PODS.path(namespace, name),
            what=f"reading pod {namespace}/{name}",
        )

    def create_crr(self, namespace: str, body: KubeObject, *, dry_run: bool) -> KubeObject:
        query = [("dryRun", "All")] if dry_run else []
        try:
            return self._json(
                "POST",
                self._crr_path(namespace),
                query=query,
                body=body,
                what=f"creating a ContainerRecreateRequest in {namespace}",
            )
        except KubeNotFound:
            # the namespace is gone, or CRRs are no longer served (kruise uninstalled or
            # the version dropped): rediscover, which raises KruiseMissing in that case
            self.crr_version(refresh=True)
            raise

    def get_crr(self, namespace: str, name: str) -> KubeObject:
        return self._json(
            "GET",
            self._crr_path(namespace, name),
            what=f"reading ContainerRecreateRequest {namespace}/{name}",
        )

    def delete_crr(
        self, namespace: str, name: str, *, resource_version: str | None = None
    ) -> KubeObject:
        options = (
            {"preconditions": {"resourceVersion": resource_version}} if resource_version else None
        )
        return self._json(
            "DELETE",
            self._crr_path(namespace, name),
            body=options,
            what=f"deleting ContainerRecreateRequest {namespace}/{name}",
        )

    def list_crrs(self, namespace: str | None) -> ListResult:
        return self._list(self._crr_path(namespace), what="listing ContainerRecreateRequests")

    def watch_crrs(
        self, namespace: str | None, resource_version: str, *, timeout_seconds: int
    ) -> HttpWatchStream:
        return self._watch(
            self._crr_path(namespace),
            resource_version,
            timeout_seconds,
            what="watching ContainerRecreateRequests",
        )

    def _list(self, path: str, *, label_selector: str = "", what: str) -> ListResult:
        """Every page of a collection; the list's resourceVersion is the first page's (the
        continue token pins the rest to the same snapshot)."""
        items: list[KubeObject] = []
        resource_version = ""
        token = ""
        while True:
            query = [("limit", str(_LIST_PAGE))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = self._json("GET", path, query=query, what=what)
            metadata = page.get("metadata") or {}
            if not resource_version:
                resource_version = str(metadata.get("resourceVersion") or "")
            items.extend(i for i in page.get("items") or [] if isinstance(i, dict))
            token = str(metadata.get("continue") or "")
            if not token:
                return ListResult(items, resource_version)

    def _watch(
        self, path: str, resource_version: str, timeout_seconds: int, *, what: str
    ) -> HttpWatchStream:
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        response = self._open(
            "GET",
            path,
            query=query,
            timeout=(self._timeout, timeout_seconds + _WATCH_READ_SLACK_SECONDS),
            what=what,
        )
        return HttpWatchStream(response)

    # ------------------------------------------------------------ any resource, raw JSON

    def get_object(self, resource: Resource, namespace: str, name: str) -> KubeObject:
        return self._json(
            "GET",
            resource.path(namespace, name),
            what=f"reading {resource.qualified} {namespace}/{name}",
        )

    def list_objects(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> ListResult:
        return self._list(
            resource.path(namespace),
            label_selector=label_selector,
            what=f"listing {resource.qualified} in {namespace or 'every namespace'}",
        )

    def watch_objects(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int,
    ) -> HttpWatchStream:
        return self._watch(
            resource.path(namespace),
            resource_version,
            timeout_seconds,
            what=f"watching {resource.qualified} in {namespace or 'every namespace'}",
        )

    def create_object(
        self, resource: Resource, namespace: str, body: KubeObject, *, dry_run: bool = False
    ) -> KubeObject:
        return self._json(
            "POST",
            resource.path(namespace),
            query=[("dryRun", "All")] if dry_run else [],
            body=body,
            what=f"creating {resource.qualified} in {namespace}",
        )

    def replace_object(
        self, resource: Resource, namespace: str, name: str, body: KubeObject
    ) -> KubeObject:
        return self._json(
            "PUT",
            resource.path(namespace, name),
            body=body,
            what=f"replacing {resource.qualified} {namespace}/{name}",
        )

    def patch_object(
        self, resource: Resource, namespace: str, name: str, patch: KubeObject
    ) -> KubeObject:
        return self._json(
            "PATCH",
            resource.path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
            what=f"patching {resource.qualified} {namespace}/{name}",
        )

    def delete_object(self, resource: Resource, namespace: str, name: str) -> KubeObject:
        return self._json(
            "DELETE",
            resource.path(namespace, name),
            what=f"deleting {resource.qualified} {namespace}/{name}",
        )

    # ------------------------------------------------------------ callers and audit

    def review_token(self, token: str, audiences: Sequence[str]) -> KubeObject:
        spec: KubeObject = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        answer = self._json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
            what="reviewing a caller's token",
        )
        status = answer.get("status")
        return status if isinstance(status, dict) else {}

    def review_access(self, spec: KubeObject) -> KubeObject:
        answer = self._json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": spec,
            },
            what="reviewing a caller's access",
        )
        status = answer.get("status")
        return status if isinstance(status, dict) else {}

    def create_event(self, namespace: str, body: KubeObject) -> KubeObject:
        return self._json(
            "POST",
            EVENTS.path(namespace),
            body=body,
            what=f"recording an Event in {namespace}",
        )

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call, unused-ignore]
