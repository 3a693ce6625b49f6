"""4c. The pod cache's memory: bytes per cached pod, in-process (no control plane needed).

Pods of the shapes the apiserver serves (a Deployment's ReplicaSet pod with two containers;
a CloneSet pod, whose labels carry its own instance id) are written as JSON, decoded as the
watch decodes them and fed through the ``PodCache``'s own conversion (the reflector's decode)
into its store, 10,000 and 50,000 at a time. Two measures, each in a fresh interpreter:
``tracemalloc`` (the bytes Python allocated and still holds, per pod) and RSS (the resident
set's growth, per pod, without tracemalloc's own overhead).

``--before DIR`` measures the service code of another checkout as well, in the same run (a
``git worktree`` of the commit before a change): the child interpreters import ``service``
from ``DIR`` instead of this tree. So this file imports nothing but the standard library and
``service``, and runs as a script in the children.

    python -m bench.pod_memory --before /tmp/wt-before [--sizes 10000 50000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
SHAPES = ("replicaset", "cloneset")
NAMESPACE = "bench-pods"
_HEX = "0123456789abcdef"
_LETTERS = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes draws name suffixes from


def _suffix(index: int) -> str:
    """Five characters as Kubernetes draws them, different for every index (a multiplier
    prime to the 27**5 possible suffixes scatters them)."""
    number = index * 1_000_003 % len(_LETTERS) ** 5
    letters = []
    for _ in range(5):
        number, digit = divmod(number, len(_LETTERS))
        letters.append(_LETTERS[digit])
    return "".join(letters)


def _stamp(second: int) -> str:
    minutes, seconds = divmod(second, 60)
    hours, minutes = divmod(minutes, 60)
    return f"2026-11-27T{10 + hours % 12:02d}:{minutes:02d}:{seconds:02d}Z"


def _container(name: str, image: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}}
    return {
        "name": name,
        "image": image,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "readinessProbe": {**probe, "initialDelaySeconds": 5, "periodSeconds": 10},
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
        "volumeMounts": [
            {
                "name": "kube-api-access",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def _status(name: str, image: str, container_id: str, since: str) -> dict[str, Any]:
    return {
        "name": name,
        "state": {"running": {"startedAt": since}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": image,
        "imageID": "docker.io/library/" + image + "@sha256:" + "ab" * 32,
        "containerID": container_id,
        "started": True,
    }


def pod_object(shape: str, index: int, rng: random.Random) -> dict[str, Any]:
    """Pod ``index`` of a workload of ``shape`` as the apiserver lists it: every field a
    kubelet and the controllers write, so the decode sees what it sees in a cluster."""
    suffix = _suffix(index)
    # pods become ready in bursts: ten to a second
    created, ready = _stamp(index // 10), _stamp(index // 10 + 4)
    containers = [("app", "shop:1.4.2"), ("sidecar", "envoy:1.31")]
    labels: dict[str, str]
    owner: dict[str, Any]
    if shape == "replicaset":
        name, gates = f"web-7c9f8d6b5-{suffix}", []
        labels = {"app": "web", "pod-template-hash": "7c9f8d6b5"}
        owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c9f8d6b5"}
    else:
        name, gates = f"shop-{suffix}", [{"conditionType": "KruisePodReady"}]
        labels = {
            "app": "shop",
            "controller-revision-hash": "shop-6d9c7f5b8",
            "pod-template-hash": "6d9c7f5b8",
            "apps.kruise.io/cloneset-instance-id": suffix,
        }
        owner = {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": "shop"}
    owner |= {"uid": "4f1c2b7e-0d55-4a8e-9b61-2f3c4d5e6f70", "controller": True}
    owner["blockOwnerDeletion"] = True
    conditions = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": created},
        {"type": "Initialized", "status": "True", "lastTransitionTime": created},
        {"type": "Ready", "status": "True", "lastTransitionTime": ready},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": ready},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
    ]
    if gates:
        conditions.append({"type": "KruisePodReady", "status": "True", "lastTransitionTime": ready})
    node = f"node-{index % 3}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": name[:-5],
            "namespace": NAMESPACE,
            "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "resourceVersion": str(1_000_000 + index * 7),
            "creationTimestamp": created,
            "labels": labels,
            "ownerReferences": [owner],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "time": created},
                {"manager": "kubelet", "operation": "Update", "time": ready},
            ],
        },
        "spec": {
            "containers": [_container(c, image) for c, image in containers],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": node,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
            ],
            "readinessGates": gates,
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420}}],
        },
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": "10.0.0." + node[-1],
            "podIP": f"10.244.{index // 250}.{index % 250}",
            "startTime": created,
            "containerStatuses": [
                _status(c, image, "containerd://" + "".join(rng.choices(_HEX, k=64)), ready)
                for c, image in containers
            ],
            "qosClass": "Burstable",
        },
    }


# ------------------------------------------------------------------ in the child interpreter


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fill(shape: str, count: int, decode: Callable[[Any, None], Any]) -> list[Any]:
    """``count`` pods through the cache's conversion; each JSON text and decoded object is
    dropped once converted, as the reflector drops them."""
    rng = random.Random(f"{shape}-{count}")
    return [decode(json.loads(json.dumps(pod_object(shape, i, rng))), None) for i in range(count)]


def measure_here(shape: str, count: int, mode: str) -> float:
    """Bytes per pod held by a ``PodCache`` filled with ``count`` pods of ``shape``, measured
    with ``mode`` (``tracemalloc`` or ``rss``), with the service code on this path."""
    import service
    from service.cache.pods import PodCache
    from service.config import Settings
    from service.metrics import Metrics

    print(f"service code: {Path(service.__file__).parent}", file=sys.stderr)
    settings = Settings(namespaces=[NAMESPACE])
    cache = PodCache(None, settings, Metrics())  # type: ignore[arg-type]  # never lists
    # the conversion the watch applies to every pod it delivers (before this change it had
    # no public name): exactly what a pod in the cache went through
    decode = cache._reflector._decode
    _fill(shape, 50, decode)  # warm up: code paths and interned constants, not counted
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
    else:
        start = _resident_bytes()
    cache.apply_list(NAMESPACE, _fill(shape, count, decode), 0.0)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else _resident_bytes()
    assert len(cache.in_namespace(NAMESPACE)) == count
    return (held - start) / count


# ------------------------------------------------------------------ the parent


def measure(tree: Path, shape: str, count: int, mode: str) -> float:
    """One measurement in a fresh interpreter whose ``service`` comes from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", shape, str(count), mode],
        env=env,
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
    )
    if f"service code: {tree / 'service'}" not in done.stderr:
        raise RuntimeError(f"the child did not run {tree}'s service code: {done.stderr}")
    return float(done.stdout.strip())


Row = tuple[str, str, int, str, float]  # code, shape, pods, mode, bytes per pod


def measure_all(
    trees: Sequence[tuple[str, Path]], sizes: Sequence[int], say: Callable[[str], None]
) -> list[Row]:
    rows = []
    for code, tree in trees:
        for shape in SHAPES:
            for count in sizes:
                for mode in ("tracemalloc", "rss"):
                    value = measure(tree, shape, count, mode)
                    say(f"  pods: {code} {shape} {count} {mode}: {value:,.0f} B/pod")
                    rows.append((code, shape, count, mode, value))
    return rows


def run_section(say: Callable[[str], None], sizes: Sequence[int] = (10_000, 50_000)) -> str:
    """The bench's section 4c: this tree's code only."""
    rows = measure_all([("this", HERE)], sizes, say)
    return "\n".join(
        [
            "## 4c. Pod cache memory",
            "",
            "Bytes per cached pod, in-process (`bench/pod_memory.py`): pods of two shapes as "
            "the apiserver lists them, through the `PodCache`'s conversion into its store; "
            "tracemalloc and RSS each in a fresh interpreter. Target: at most 1 KiB.",
            "",
            table(rows),
        ]
    )


def table(rows: Sequence[Row]) -> str:
    lines = ["| code | pod | pods | tracemalloc B/pod | RSS B/pod |", "|---|---|---:|---:|---:|"]
    by_key: dict[tuple[str, str, int], dict[str, float]] = {}
    for code, shape, count, mode, value in rows:
        by_key.setdefault((code, shape, count), {})[mode] = value
    for (code, shape, count), values in by_key.items():
        lines.append(
            f"| {code} | {shape} | {count:,} | {values.get('tracemalloc', 0):,.0f} "
            f"| {values.get('rss', 0):,.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--child", nargs=3, metavar=("SHAPE", "COUNT", "MODE"))
    args = parser.parse_args(argv)
    if args.child:
        shape, count, mode = args.child
        print(measure_here(shape, int(count), mode))
        return
    trees = [("after", HERE)]
    if args.before is not None:
        trees.insert(0, ("before", args.before.resolve()))
    print(table(measure_all(trees, args.sizes, lambda line: print(line, flush=True))))


if __name__ == "__main__":
    main()
