"""CRRs for the pure tests: one as the apiserver returns it for pod ``ns/web-0``."""

from __future__ import annotations

import json
from typing import Any

from service.core.objects import KubeObject


def crr(
    *,
    phase: str = "",
    completed: bool = False,
    message: str = "",
    states: list[dict[str, Any]] | None = None,
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if completed:
        status["completionTime"] = "2026-11-27T10:00:05Z"
    if message:
        status["message"] = message
    if states is not None:
        status["containerRecreateStates"] = states
    return {
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "ContainerRecreateRequest",
        "metadata": {
            "name": "web-0-abcde",
            "namespace": "ns",
            "resourceVersion": "42",
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "labels": {
                "crr.apps.kruise.io/pod-uid": "uid-1",
                "crr.apps.kruise.io/node-name": "node-1",
            },
            "annotations": {
                "crr-gateway.io/requested-by": "alice",
                "crr-gateway.io/reason": "deploy",
                "crr-gateway.io/warnings": json.dumps(["w1"]),
            },
        },
        "spec": {
            "podName": "web-0",
            "containers": [{"name": "app"}, {"name": "sidecar"}],
            "strategy": strategy if strategy is not None else {"failurePolicy": "Fail"},
            "activeDeadlineSeconds": 300,
            "ttlSecondsAfterFinished": 1800,
        },
        "status": status,
    }


def watched_crr(name: str, rv: int, *, pod: str = "web-0", completed: bool = False) -> KubeObject:
    """A CRR as a watch delivers it, at resourceVersion ``rv``."""
    status: dict[str, Any] = {"phase": "Recreating"}
    if completed:
        status = {
            "phase": "Completed",
            "completionTime": "2026-11-27T10:00:05Z",
            "containerRecreateStates": [{"name": "app", "phase": "Succeeded"}],
        }
    return {
        "apiVersion": "apps.kruise.io/v1beta1",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        "spec": {"podName": pod, "containers": [{"name": "app"}]},
        "status": status,
    }
