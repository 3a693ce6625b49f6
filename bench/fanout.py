"""4. Memory and fan-out: the service's RSS with N CRRs in its cache (against its RSS with an
empty cache, same process), and many concurrent SSE followers of one restart."""

from __future__ import annotations

import asyncio
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


async def _follow(
    host: str,
    port: int,
    path: str,
    connect_gate: asyncio.Semaphore,
    connected: list[int],
    all_connected: asyncio.Event,
    wanted: int,
) -> float | None:
    """Follow one stream; return the perf_counter time the finished snapshot arrived."""
    async with connect_gate:
        reader, writer = await asyncio.open_connection(host, port)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
    buffer = b""
    seen_first = False
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return None
            buffer += chunk
            if not seen_first and b"event: restart" in buffer:
                seen_first = True
                connected[0] += 1
                if connected[0] >= wanted:
                    all_connected.set()
            if b'"finished":true' in buffer:
                return time.perf_counter()
            buffer = buffer[-64:]  # keep enough to find a marker split across reads
    finally:
        writer.close()


async def _fan_out(
    service: Service, world: World, namespace: str, name: str, followers: int
) -> FanoutRun:
    path = f"/v1/namespaces/{namespace}/restarts/{name}/events"
    gate = asyncio.Semaphore(100)
    connected = [0]
    all_connected = asyncio.Event()
    rss_before = rss_mib(service.pid)
    tasks = [
        asyncio.create_task(
            _follow("127.0.0.1", service.port, path, gate, connected, all_connected, followers)
        )
        for _ in range(followers)
    ]
    try:
        await asyncio.wait_for(all_connected.wait(), 120)
    except TimeoutError:
        pass  # report how many made it
    await asyncio.sleep(0.5)
    rss_during = rss_mib(service.pid)
    start = time.perf_counter()
    await asyncio.to_thread(world.complete_crr, namespace, name)
    done, pending = await asyncio.wait(tasks, timeout=60)
    for task in pending:
        task.cancel()
    times = [t.result() for t in done if t.exception() is None]
    arrived = [(t - start) * 1000 for t in times if t is not None]
    return FanoutRun(
        followers=followers,
        connected=connected[0],
        received_final=len(arrived),
        last_ms=max(arrived) if arrived else float("nan"),
        p50_ms=percentile(arrived, 50),
        rss_before_mib=rss_before,
        rss_during_mib=rss_during,
    )


def measure_fanout(
    world: World,
    service: Service,
    namespace: str,
    pods: Sequence[str],
    followers: int,
    repetitions: int,
    say: Say,
) -> list[FanoutRun]:
    """Per repetition: a restart on a fresh pod that stays pending (the simulated daemon is
    down), ``followers`` SSE streams on it, then its final status written as kruise-daemon
    writes it; the time runs from that write to each follower holding the final snapshot."""
    runs = []
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for rep in range(repetitions):
            resp = client.post(
                f"/v1/namespaces/{namespace}/restarts",
                json={"pod": pods[rep], "ttlSecondsAfterFinished": LONG_TTL},
            )
            if resp.status_code != 201:
                raise RuntimeError(f"SSE restart create answered {resp.status_code}: {resp.text}")
            run = asyncio.run(_fan_out(service, world, namespace, resp.json()["name"], followers))
            runs.append(run)
            say(
                f"  SSE rep {rep + 1}: {run.received_final}/{run.followers} got the final "
                f"event, last after {run.last_ms:.0f} ms, RSS {run.rss_during_mib:.1f} MiB"
            )
    return runs
