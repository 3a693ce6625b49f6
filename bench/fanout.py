"""4. Memory: the service's RSS with N CRRs in its cache (against its RSS with an empty cache,
same process). The followers (SSE streams and long polls) are bench/followers.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from bench.cluster import LONG_TTL, Service, World, rss_mib, wait
from bench.stats import median, percentile

Say = Callable[[str], None]
_LIVE = re.compile(r'^crr_gateway_cache_restarts\{state="live"\}\s+(\S+)', re.M)


def sample_rss(pid: int, samples: int = 5, interval: float = 0.5) -> float:
    values = []
    for _ in range(samples):
        values.append(rss_mib(pid))
        time.sleep(interval)
    return median(values)


def cached_live(service: Service) -> int:
    text = httpx.get(service.url + "/metrics", timeout=10).text
    match = _LIVE.search(text)
    return int(float(match.group(1))) if match else 0


@dataclass(frozen=True, slots=True)
class MemoryPoint:
    crrs: int
    rss_mib: float
    create_p50_ms: float  # a create through the service with that many CRRs cached
    poll_p50_ms: float  # a status poll with that many CRRs cached


def _probe(service: Service, namespace: str, spare: Sequence[str]) -> tuple[float, float]:
    """Sequential creates on spare pods (deleted again) and polls: p50 of each, in ms."""
    creates: list[float] = []
    polls: list[float] = []
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for pod in spare:
            start = time.perf_counter()
            resp = client.post(
                f"/v1/namespaces/{namespace}/restarts",
                json={"pod": pod, "ttlSecondsAfterFinished": LONG_TTL},
            )
            creates.append(time.perf_counter() - start)
            if resp.status_code != 201:
                raise RuntimeError(f"probe create answered {resp.status_code}: {resp.text}")
            name = resp.json()["name"]
            for _ in range(20):
                start = time.perf_counter()
                client.get(f"/v1/namespaces/{namespace}/restarts/{name}").raise_for_status()
                polls.append(time.perf_counter() - start)
            client.delete(f"/v1/namespaces/{namespace}/restarts/{name}").raise_for_status()
    return percentile(creates, 50) * 1000, percentile(polls, 50) * 1000


def measure_memory(
    world: World,
    service: Service,
    namespace: str,
    pods: Sequence[str],
    spare: Sequence[str],
    sizes: Sequence[int],
    say: Say,
) -> tuple[float, list[MemoryPoint]]:
    """RSS of ``service`` (serving only ``namespace``) empty, then filled to each size."""
    create_ms, poll_ms = _probe(service, namespace, spare)  # the same probe warms both
    baseline = sample_rss(service.pid)
    points = [MemoryPoint(0, baseline, create_ms, poll_ms)]
    say(f"  memory: empty cache {baseline:.1f} MiB")
    made = 0
    for size in sizes:
        start = time.monotonic()
        world.bulk_crrs(namespace, list(pods), size - made)
        made = size

        def cached(size: int = size) -> bool:
            return cached_live(service) >= size

        wait(f"{size} CRRs in the service's cache", cached, 300, 1)
        say(f"  memory: {size} CRRs created and cached in {time.monotonic() - start:.0f}s")
        create_ms, poll_ms = _probe(service, namespace, spare)
        rss = sample_rss(service.pid)
        points.append(MemoryPoint(size, rss, create_ms, poll_ms))
        say(f"  memory: {size} CRRs {rss:.1f} MiB, create p50 {create_ms:.1f} ms")
    return baseline, points


# ------------------------------------------------------------------ SSE fan-out


@dataclass(frozen=True, slots=True)
class FanoutRun:
    followers: int
    connected: int
    received_final: int
    last_ms: float  # from the final status write to the last follower having it
    p50_ms: float
    rss_before_mib: float
    rss_during_mib: float
