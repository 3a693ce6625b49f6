"""3. Creates: the service's ``POST .../restarts`` against a direct create of the same CRR
with the python client (the floor), at the same concurrency, each create on its own pod. The
command lines, one process per restart, are in bench/cli.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from bench.cluster import LONG_TTL, World, wait
from bench.plan import Plan
from bench.stats import Figure, Run, run_from_latencies

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CreateFigures:
    concurrency: int
    per_round: int
    service: Figure
    direct: Figure


@dataclass
class Creator:
    """One side of the comparison: ``create(pod)`` raises on anything but a created CRR."""

    label: str
    create: Callable[[str], None]
    close: Callable[[], None]


def timed_round(
    creator: Creator, pods: Sequence[str], concurrency: int, errors: list[str] | None = None
) -> Run:
    """Create on each pod, ``concurrency`` at a time; failures are counted in the run and their
    messages appended to ``errors`` when given (a count alone cannot say what failed)."""
    latencies: list[float] = []
    errors = [] if errors is None else errors
    before = len(errors)
    lock = threading.Lock()

    def one(pod: str) -> None:
        start = time.perf_counter()
        try:
            creator.create(pod)
        except Exception as e:
            with lock:
                errors.append(f"{type(e).__name__}: {e}"[:300])
            return
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)

    with ThreadPoolExecutor(concurrency) as pool:
        begin = time.perf_counter()
        list(pool.map(one, pods))
        seconds = time.perf_counter() - begin
    failed = len(errors) - before
    if failed and not latencies:
        raise RuntimeError(f"every {creator.label} create failed, e.g. {errors[before]}")
    return run_from_latencies(latencies, seconds, errors=failed)


def service_creator(url: str, namespace: str, concurrency: int, token: str | None) -> Creator:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx.Client(
        base_url=url,
        headers=headers,
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )

    def create(pod: str) -> None:
        resp = client.post(
            f"/v1/namespaces/{namespace}/restarts",
            json={"pod": pod, "ttlSecondsAfterFinished": LONG_TTL},
        )
        if resp.status_code != 201:
            raise RuntimeError(f"service answered {resp.status_code}: {resp.text[:200]}")

    return Creator("service", create, client.close)


def direct_creator(world: World, namespace: str, concurrency: int) -> Creator:
    api: Any = world.new_client(pool_size=concurrency)

    def create(pod: str) -> None:
        world.create_crr(api, namespace, world.crr_body(namespace, pod))

    return Creator("python client", create, api.close)


def clean(world: World, service_url: str, namespace: str, token: str | None = None) -> None:
    """Delete every CRR of the namespace and wait until the service's cache saw it."""
    world.delete_crrs(namespace)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def none_active() -> bool:
        resp = httpx.get(
            f"{service_url}/v1/namespaces/{namespace}/restarts",
            params={"finished": "false", "limit": 1},
            headers=headers,
            timeout=10,
        )
        return resp.status_code == 200 and resp.json()["items"] == []

    wait("the service to see the CRRs deleted", none_active, 60)


def measure_creates(
    world: World,
    service_url: str,
    namespace: str,
    pods: Sequence[str],
    plan: Plan,
    say: Say,
    token: str | None = None,
) -> list[CreateFigures]:
    figures = []
    for concurrency in plan.create_concurrency:
        size = plan.round_size(concurrency)
        sides = [
            service_creator(service_url, namespace, concurrency, token),
            direct_creator(world, namespace, concurrency),
        ]
        try:
            for creator in sides:  # the same untimed warm-up round on both sides
                timed_round(creator, pods[:concurrency], concurrency)
                clean(world, service_url, namespace, token)
            runs: dict[str, list[Run]] = {c.label: [] for c in sides}
            for rep in range(plan.repetitions):
                order = sides if rep % 2 == 0 else sides[::-1]
                for creator in order:
                    failures: list[str] = []
                    run = timed_round(creator, pods[:size], concurrency, failures)
                    clean(world, service_url, namespace, token)
                    runs[creator.label].append(run)
                    say(
                        f"  creates c={concurrency} {creator.label} rep {rep + 1}: "
                        f"{run.throughput:,.1f}/s p50 {run.p50_ms:.1f} ms "
                        f"p99 {run.p99_ms:.1f} ms" + (f" errors {run.errors}" if run.errors else "")
                    )
                    for message in sorted(set(failures))[:3]:
                        say(f"    failed: {message}")
        finally:
            for creator in sides:
                creator.close()
        figures.append(
            CreateFigures(
                concurrency,
                size,
                Figure.of(runs["service"]),
                Figure.of(runs["python client"]),
            )
        )
    return figures
