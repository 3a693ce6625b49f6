"""The three ways the rollout section restarts container ``app`` of every pod of a workload.

1. A crr-gateway rollout: one ``POST .../rollouts`` (the CloneSet as target, ``maxUnavailable``
   N), then long polls of the rollout (``?wait=30&resourceVersion=RV``) until it has finished.
2. What users of the service do today: one restart at a time, ``POST .../restarts`` then long
   polls of it until it has finished, then the next pod.
3. What users without it do: per pod, ``kubectl create -f -`` of a CRR manifest, then
   ``kubectl get ... -o jsonpath={.status.phase}`` every ``poll_seconds`` until ``Completed``,
   then the next pod (a shell's ``until ...; do sleep 1; done``).

Each returns the seconds each pod took (from its first request to seeing it finished); the
caller times the whole. Every restart must succeed, or the way raises.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from service.core.crr import CRR_GROUP, CRR_PLURAL, build_crr
from service.core.naming import generate_name, request_hash
from service.core.schemas import RestartRequest

Say = Callable[[str], None]

CONTAINER = "app"  # restarted in every pod; the pods' other container must stay untouched
CRR_VERSION = "v1beta1"
CRR_RESOURCE = f"{CRR_PLURAL}.{CRR_GROUP}"
LONG_POLL_SECONDS = 30
TIMEOUT_S = 120.0  # one pod's restart, or one process


def _ok(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


def follow(
    http: httpx.Client, path: str, current: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Long-poll ``path`` from ``current`` until the object has finished."""
    deadline = time.monotonic() + timeout
    while not current["finished"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} not finished after {timeout:.0f}s: {current}")
        params = {"wait": LONG_POLL_SECONDS, "resourceVersion": current["resourceVersion"]}
        current = _ok(http.get(path, params=params), 200)
    return current


# ------------------------------------------------------------------ 1. a rollout


def rollout(
    http: httpx.Client, namespace: str, cloneset: str, max_unavailable: int, timeout: float
) -> dict[str, Any]:
    """One rollout of the CloneSet, followed until it has finished; returns it finished."""
    body = {
        "target": {"kind": "CloneSet", "name": cloneset},
        "containers": [CONTAINER],
        "maxUnavailable": max_unavailable,
        "reason": "bench",
    }
    created = _ok(http.post(f"/v1/namespaces/{namespace}/rollouts", json=body), 201)
    done = follow(http, f"/v1/namespaces/{namespace}/rollouts/{created['name']}", created, timeout)
    if done["phase"] != "Succeeded":
        raise RuntimeError(f"the rollout ended {done['phase']}: {done['message']}")
    return done


def warm_rollout(http: httpx.Client, namespace: str, cloneset: str) -> None:
    """A dry run: the create path's code and caches warm, nothing restarted."""
    body = {"target": {"kind": "CloneSet", "name": cloneset}, "containers": [CONTAINER]}
    _ok(http.post(f"/v1/namespaces/{namespace}/rollouts?dryRun=true", json=body), 200)


# ------------------------------------------------------------------ 2. one at a time, ?wait


def one_at_a_time(http: httpx.Client, namespace: str, pods: Sequence[str], say: Say) -> list[float]:
    took = []
    for index, pod in enumerate(pods):
        started = time.perf_counter()
        body = {"pod": pod, "containers": [CONTAINER]}
        created = _ok(http.post(f"/v1/namespaces/{namespace}/restarts", json=body), 201)
        path = f"/v1/namespaces/{namespace}/restarts/{created['name']}"
        done = follow(http, path, created, TIMEOUT_S)
        if done["result"] != "Succeeded":
            raise RuntimeError(f"restart of {pod} ended {done['result']}: {done['message']}")
        took.append(time.perf_counter() - started)
        if (index + 1) % 10 == 0:
            say(f"    {index + 1}/{len(pods)} restarted one at a time")
    return took


def warm_one(http: httpx.Client, namespace: str, pod: str) -> None:
    body = {"pod": pod, "containers": [CONTAINER]}
    _ok(http.post(f"/v1/namespaces/{namespace}/restarts?dryRun=true", json=body), 200)


# ------------------------------------------------------------------ 3. kubectl and a poll loop


def crr_manifest(namespace: str, pod: str) -> dict[str, Any]:
    """The CRR the service would create for ``{"pod": pod, "containers": ["app"]}``: the
    same builder, so the same strategy (kruise waits the same unready grace period)."""
    request = RestartRequest(pod=pod, containers=[CONTAINER])
    return build_crr(
        namespace=namespace,
        name=generate_name(pod),
        version=CRR_VERSION,
        request=request,
        containers=[CONTAINER],
        requested_by="kubectl",
        warnings=[],
        body_hash=request_hash(request),
        idempotency=None,
    )


def _kubectl(kubectl: str, kubeconfig: Path, args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [kubectl, *args],
        input=stdin,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return done.stdout.strip()


def kubectl_version(kubectl: str) -> str:
    out = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    ).stdout
    version: str = json.loads(out)["clientVersion"]["gitVersion"]
    return version


def warm_kubectl(kubectl: str, kubeconfig: Path, namespace: str) -> None:
    """kubectl's discovery cache on disk, as a user's second command finds it."""
    _kubectl(kubectl, kubeconfig, ["get", CRR_RESOURCE, "-n", namespace, "-o", "name"])


def kubectl_loop(
    kubectl: str,
    kubeconfig: Path,
    namespace: str,
    pods: Sequence[str],
    poll_seconds: float,
    say: Say,
) -> list[float]:
    took = []
    for index, pod in enumerate(pods):
        started = time.perf_counter()
        manifest = json.dumps(crr_manifest(namespace, pod))
        created = _kubectl(kubectl, kubeconfig, ["create", "-f", "-", "-o", "name"], manifest)
        name = created.rsplit("/", 1)[-1]
        get = ["get", CRR_RESOURCE, name, "-n", namespace, "-o", "jsonpath={.status.phase}"]
        while (phase := _kubectl(kubectl, kubeconfig, get)) != "Completed":
            if time.perf_counter() - started > TIMEOUT_S:
                raise TimeoutError(f"CRR {name} of {pod} still {phase!r}")
            time.sleep(poll_seconds)
        took.append(time.perf_counter() - started)
        if (index + 1) % 10 == 0:
            say(f"    {index + 1}/{len(pods)} restarted with kubectl")
    return took
