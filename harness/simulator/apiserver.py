"""The apiserver calls the node agents make, as raw JSON (the client's models are slow and fragile).

Every call answers plain dicts; ``None`` stands for "not found" where the agents treat a 404 as an
answer rather than a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from harness.simulator.objects import (
    CRD_NAME,
    GROUP,
    LABEL_ACTIVE,
    LABEL_NODE_NAME,
    PLURAL,
    REQUEST_TIMEOUT,
    Obj,
    meta,
)
from harness.simulator.plumbing import is_status, raw_json

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class NodeApi:
    """What the kubelet and kruise-daemon of ``node_name`` read and write."""

    def __init__(self, api_client: k8s.ApiClient, node_name: str) -> None:
        self.node_name = node_name
        self._core = k8s.CoreV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self._crds = k8s.ApiextensionsV1Api(api_client)

    # -- pods and the node ---------------------------------------------------------------------

    def list_pods(self, **kwargs: Any) -> Any:
        """List (and, with ``watch=True``, watch) every pod: the call a reflector makes."""
        return self._core.list_pod_for_all_namespaces(**kwargs)

    def read_pod(self, namespace: str, name: str) -> Obj | None:
        try:
            pod: Obj = raw_json(
                self._core.read_namespaced_pod(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as error:
            if is_status(error, 404):
                return None
            raise
        return pod

    def bind(self, pod: Obj) -> None:
        """Play the scheduler: there is one node. A pod gone or already bound is left alone."""
        # _preload_content=False sidesteps the client failing to read the Status the binding
        # subresource answers with.
        binding = k8s.V1Binding(
            metadata=k8s.V1ObjectMeta(name=meta(pod)["name"], uid=meta(pod)["uid"]),
            target=k8s.V1ObjectReference(api_version="v1", kind="Node", name=self.node_name),
        )
        try:
            raw_json(
                self._core.create_namespaced_binding(
                    meta(pod)["namespace"],
                    binding,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            if not is_status(error, 404, 409):
                raise

    def delete_pod_now(self, pod: Obj) -> None:
        """Delete a terminating pod with grace 0, guarded by its UID (a newer pod stays)."""
        options = k8s.V1DeleteOptions(
            grace_period_seconds=0, preconditions=k8s.V1Preconditions(uid=meta(pod)["uid"])
        )
        try:
            raw_json(
                self._core.delete_namespaced_pod(
                    meta(pod)["name"],
                    meta(pod)["namespace"],
                    grace_period_seconds=0,
                    body=options,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            if not is_status(error, 404, 409):
                raise

    def patch_pod_status(self, pod: Obj, body: Obj, content_type: str) -> Obj:
        result: Obj = raw_json(
            self._core.patch_namespaced_pod_status(
                meta(pod)["name"],
                meta(pod)["namespace"],
                body,
                _content_type=content_type,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
        return result

    def read_or_create_node(self) -> Obj:
        try:
            node: Obj = raw_json(
                self._core.read_node(
                    self.node_name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except ApiException as error:
            if not is_status(error, 404):
                raise
            labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux"}
            created = k8s.V1Node(metadata=k8s.V1ObjectMeta(name=self.node_name, labels=labels))
            node = raw_json(
                self._core.create_node(
                    created, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
        return node

    def patch_node_status(self, status: Obj) -> None:
        raw_json(
            self._core.patch_node_status(
                self.node_name,
                {"status": status},
                _content_type=STRATEGIC_MERGE_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )

    # -- ContainerRecreateRequests ---------------------------------------------------------------

    def served_crr_versions(self) -> set[str]:
        crd: Obj = raw_json(
            self._crds.read_custom_resource_definition(
                CRD_NAME, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        )
        return {v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")}

    @property
    def crr_selector(self) -> str:
        """The daemon's informer selector: active CRRs of this node."""
        return f"{LABEL_NODE_NAME}={self.node_name},{LABEL_ACTIVE}=true"

    def list_crrs_call(self, version: str) -> Callable[..., Any]:
        """The list (and watch) call of every CRR in ``version``, for a reflector."""

        def call(**kwargs: Any) -> Any:
            return self._custom.list_cluster_custom_object(GROUP, version, PLURAL, **kwargs)

        return call

    def list_crrs(self, version: str, namespace: str, pod_name: str) -> list[Obj]:
        """The active CRRs of this node for one pod, as the daemon's informer selects them."""
        listed: Obj = raw_json(
            self._custom.list_namespaced_custom_object(
                GROUP,
                version,
                namespace,
                PLURAL,
                label_selector=self.crr_selector,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
        return [c for c in listed.get("items") or [] if c["spec"].get("podName") == pod_name]

    def read_crr(self, version: str, namespace: str, name: str) -> Obj | None:
        try:
            crr: Obj = raw_json(
                self._custom.get_namespaced_custom_object(
                    GROUP,
                    version,
                    namespace,
                    PLURAL,
                    name,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            if is_status(error, 404):
                return None
            raise
        return crr

    def patch_crr_status(self, version: str, crr: Obj, body: Obj) -> None:
        raw_json(
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                version,
                meta(crr)["namespace"],
                PLURAL,
                meta(crr)["name"],
                body,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
