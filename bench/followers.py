"""4b. Followers: many clients following one pending restart on one service process, as
server-sent events (``GET .../restarts/{name}/events``) or as long polls (``?wait=60``, again
with the new resourceVersion until finished, as a client loops); then the final status is
written as kruise-daemon writes it (a status merge-patch). The notification lag runs from just
before that write to each client holding the finished restart; every client must get it.

Clients are raw asyncio sockets in the bench process (its open-files limit raised to the hard
limit); the service gets a connection cap above the number of followers."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from bench.cluster import LONG_TTL, Service, World, rss_mib
from bench.stats import median, percentile

Say = Callable[[str], None]
MODES = ("sse", "long-poll")
CONNECT_AT_ONCE = 200


@dataclass(frozen=True, slots=True)
class FollowRun:
    mode: str
    followers: int
    connected: int
    received_final: int
    p50_ms: float
    p99_ms: float
    last_ms: float
    rss_during_mib: float


def raise_open_files() -> int:
    """The soft limit up to the hard one (10,000 followers need 10,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _request(host: str, port: int, path: str, accept: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {accept}\r\n\r\n".encode()


async def _sse(
    host: str, port: int, path: str, gate: asyncio.Semaphore, ready: Callable[[], None]
) -> float | None:
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(_request(host, port, path + "/events", "text/event-stream"))
    tail = b""
    first = False
    try:
        while chunk := await reader.read(65536):
            tail += chunk
            if not first and b"event: restart" in tail:
                first = True
                ready()
            if b'"finished":true' in tail:
                return time.perf_counter()
            tail = tail[-64:]  # enough to find a marker split across reads
        return None
    finally:
        writer.close()


async def _long_poll(
    host: str,
    port: int,
    path: str,
    version: str,
    gate: asyncio.Semaphore,
    ready: Callable[[], None],
) -> float | None:
    """Long polls on one kept-alive connection until the answer says finished."""
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
    first = True
    try:
        while True:
            writer.write(_request(host, port, f"{path}?wait=60&resourceVersion={version}", "*/*"))
            if first:
                ready()
                first = False
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = json.loads(await reader.readexactly(length))
            if body.get("finished"):
                return time.perf_counter()
            version = body["resourceVersion"]
    except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
        return None
    finally:
        writer.close()


async def _follow(
    mode: str, service: Service, world: World, namespace: str, name: str, version: str, n: int
) -> FollowRun:
    path = f"/v1/namespaces/{namespace}/restarts/{name}"
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    ready_count = [0]
    everyone = asyncio.Event()

    def ready() -> None:
        ready_count[0] += 1
        if ready_count[0] >= n:
            everyone.set()

    host, port = "127.0.0.1", service.port
    tasks = [
        asyncio.create_task(
            _sse(host, port, path, gate, ready)
            if mode == "sse"
            else _long_poll(host, port, path, version, gate, ready)
        )
        for _ in range(n)
    ]
    try:
        await asyncio.wait_for(everyone.wait(), 180)
    except TimeoutError:
        pass  # report how many made it
    # long polls: give the service time to read the last requests it was sent
    await asyncio.sleep(1.0 + (n / 5000 if mode == "long-poll" else 0.0))
    rss = rss_mib(service.pid)
    start = time.perf_counter()
    await asyncio.to_thread(world.complete_crr, namespace, name)
    done, pending = await asyncio.wait(tasks, timeout=120)
    for task in pending:
        task.cancel()
    times = [t.result() for t in done if t.exception() is None]
    lags = [(t - start) * 1000 for t in times if t is not None]
    return FollowRun(
        mode=mode,
        followers=n,
        connected=ready_count[0],
        received_final=len(lags),
        p50_ms=percentile(lags, 50),
        p99_ms=percentile(lags, 99),
        last_ms=max(lags) if lags else float("nan"),
        rss_during_mib=rss,
    )


def measure(
    world: World,
    service: Service,
    namespace: str,
    pods: Sequence[str],
    counts: Sequence[int],
    repetitions: int,
    say: Say,
) -> list[FollowRun]:
    """For each mode and count, ``repetitions`` runs, each on a fresh pending restart (the
    simulated daemon is down) of its own pod: ``len(pods)`` must cover them all."""
    raise_open_files()
    runs = []
    pod_index = 0
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for mode in MODES:
            for n in counts:
                for rep in range(repetitions):
                    resp = client.post(
                        f"/v1/namespaces/{namespace}/restarts",
                        json={"pod": pods[pod_index], "ttlSecondsAfterFinished": LONG_TTL},
                    )
                    pod_index += 1
                    if resp.status_code != 201:
                        raise RuntimeError(f"create answered {resp.status_code}: {resp.text}")
                    created = resp.json()
                    run = asyncio.run(
                        _follow(
                            mode,
                            service,
                            world,
                            namespace,
                            created["name"],
                            created["resourceVersion"],
                            n,
                        )
                    )
                    runs.append(run)
                    say(
                        f"  {mode} x{n} rep {rep + 1}: {run.received_final}/{n} got it, "
                        f"p50 {run.p50_ms:.0f} ms p99 {run.p99_ms:.0f} ms last "
                        f"{run.last_ms:.0f} ms, RSS {run.rss_during_mib:.0f} MiB"
                    )
    return runs


def pods_needed(counts: Sequence[int], repetitions: int) -> int:
    return len(MODES) * len(counts) * repetitions


def render(runs: Sequence[FollowRun]) -> str:
    if not runs:
        return ""
    lines = [
        "## 4b. Followers: server-sent events and long polls",
        "",
        "Followers of one pending restart on one service process; then its final status is "
        "written as kruise-daemon writes it. Lag: from just before that write to each "
        "follower holding the finished restart. Median over the runs of each row.",
        "",
        "| mode | followers | got the final state | lag p50 ms | lag p99 ms | last ms | "
        "RSS during MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r.mode, r.followers) for r in runs}, key=lambda k: (MODES.index(k[0]), k[1]))
    for mode, n in keys:
        mine = [r for r in runs if (r.mode, r.followers) == (mode, n)]
        got = ", ".join(f"{r.received_final:,}/{n:,}" for r in mine)
        lines.append(
            f"| {mode} | {n:,} | {got} | {median(r.p50_ms for r in mine):.0f} | "
            f"{median(r.p99_ms for r in mine):.0f} | {median(r.last_ms for r in mine):.0f} | "
            f"{median(r.rss_during_mib for r in mine):.0f} |"
        )
    return "\n".join(lines)
