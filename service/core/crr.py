"""The ContainerRecreateRequest we create: its API coordinates, the labels and annotations
kruise sets and we set, and the body built from a checked request."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from service.core.objects import KubeObject
from service.core.schemas import RestartRequest

CRR_GROUP = "apps.kruise.io"
CRR_PLURAL = "containerrecreaterequests"
CRR_KIND = "ContainerRecreateRequest"
CRR_VERSIONS_PREFERRED = ("v1beta1", "v1alpha1")

# --- kruise's keys
CRR_ACTIVE_LABEL = "crr.apps.kruise.io/active"
CRR_POD_UID_LABEL = "crr.apps.kruise.io/pod-uid"
CRR_NODE_NAME_LABEL = "crr.apps.kruise.io/node-name"
KRUISE_POD_READY = "KruisePodReady"
SIDECAR_TERMINATED = "SidecarTerminated"

# --- ours
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "crr-gateway"
IDEMPOTENCY_KEY_LABEL = "crr-gateway.io/idempotency-key"
REQUEST_HASH_ANNOTATION = "crr-gateway.io/request-hash"
REQUESTED_BY_ANNOTATION = "crr-gateway.io/requested-by"
REASON_ANNOTATION = "crr-gateway.io/reason"
REQUEST_ID_ANNOTATION = "crr-gateway.io/request-id"
WARNINGS_ANNOTATION = "crr-gateway.io/warnings"


def build_crr(
    *,
    namespace: str,
    name: str,
    version: str,
    request: RestartRequest,
    containers: Sequence[str],
    requested_by: str,
    warnings: Sequence[str],
    body_hash: str,
    idempotency: str | None,
    request_id: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> KubeObject:
    """The CRR body. Containers carry names only: kruise's webhook fills ``statusContext``,
    ``preStop`` and ``ports`` itself and refuses them from a client. ``extra_labels``: a
    rollout's restarts carry its name."""
    strategy: dict[str, Any] = {
        "failurePolicy": request.failurePolicy,
        "orderedRecreate": request.orderedRecreate,
        "unreadyGracePeriodSeconds": request.unreadyGracePeriodSeconds,
    }
    if request.terminationGracePeriodSeconds is not None:
        strategy["terminationGracePeriodSeconds"] = request.terminationGracePeriodSeconds
    if request.minStartedSeconds is not None:
        strategy["minStartedSeconds"] = request.minStartedSeconds
    if request.forceRecreate is not None:
        strategy["forceRecreate"] = request.forceRecreate
    labels = {MANAGED_BY_LABEL: MANAGED_BY, **(extra_labels or {})}
    if idempotency is not None:
        labels[IDEMPOTENCY_KEY_LABEL] = idempotency
    annotations = {REQUESTED_BY_ANNOTATION: requested_by, REQUEST_HASH_ANNOTATION: body_hash}
    if request.reason is not None:
        annotations[REASON_ANNOTATION] = request.reason
    if request_id is not None:
        annotations[REQUEST_ID_ANNOTATION] = request_id
    if warnings:
        annotations[WARNINGS_ANNOTATION] = json.dumps(list(warnings))
    return {
        "apiVersion": f"{CRR_GROUP}/{version}",
        "kind": CRR_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "podName": request.pod,
            "containers": [{"name": c} for c in containers],
            "strategy": strategy,
            "activeDeadlineSeconds": request.activeDeadlineSeconds,
            "ttlSecondsAfterFinished": request.ttlSecondsAfterFinished,
        },
    }
