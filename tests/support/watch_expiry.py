"""Making the service's watch expire (410 Gone) on purpose: etcd compacted past the version the
watch would resume from, and the service's count of the relists that followed.

This needs a control plane whose kube-apiserver runs without its watch cache (the
``uncached_cluster`` fixture): with it, recent versions are served from memory for minutes and a
resumed watch would not see the compaction."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from dataclasses import dataclass
from typing import Any

import httpx
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator

UNCACHED_APISERVER_ARGS = ("--watch-cache=false",)


@dataclass(frozen=True)
class UncachedCluster:
    """A control plane whose apiserver has no watch cache, an admin client, its node agents."""

    plane: ControlPlane
    kube: k8s.ApiClient
    simulator: Simulator


def etcd_call(plane: ControlPlane, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """etcd's v3 JSON gateway (no etcdctl needed)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{plane.etcd_port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def compact_etcd(plane: ControlPlane) -> int:
    """Compact etcd at its current revision: every older revision is gone."""
    header = etcd_call(plane, "/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]
    revision = int(header["revision"])
    etcd_call(plane, "/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


def expired_relists(api: httpx.Client, scope: str) -> float:
    """How often the service relisted its restarts in ``scope`` (a namespace, or ``*`` in
    cluster-wide mode) because its watch had expired."""
    pattern = (
        r"crr_gateway_watch_restarts_total\{reason=\"expired\",scope=\""
        + re.escape(scope)
        + r"\"\} ([0-9.]+)"
    )
    found = re.search(pattern, api.get("/metrics").text)
    return float(found.group(1)) if found else 0.0
