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


class _Follower(asyncio.Protocol):
    """One follower on one connection, as cheap as a client can be: the bench's 10,000 of them
    share the two cores with the service, so their own cost must not become the lag measured.
    A protocol, not a stream reader and a task: bytes are looked at in the callback that
    received them, and the receive time is taken there, before anything is parsed."""

    def __init__(self, request: bytes, ready: Callable[[], None]) -> None:
        self.request = request
        self.ready = ready
        self.received: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.received.done():
            self.received.set_result(None)

    def finish(self, at: float) -> None:
        if not self.received.done():
            self.received.set_result(at)
        assert self.transport is not None
        self.transport.close()


class _SseFollower(_Follower):
    """Reads the event stream until the finished snapshot."""

    def __init__(self, request: bytes, ready: Callable[[], None]) -> None:
        super().__init__(request, ready)
        self.tail = b""
        self.first = False

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        tail = self.tail + data
        if not self.first and b"event: restart" in tail:
            self.first = True
            self.ready()
        if b'"finished":true' in tail:
            self.finish(now)
        self.tail = tail[-64:]  # enough to find a marker split across reads


class _LongPollFollower(_Follower):
    """Long polls on one kept-alive connection until the answer says finished."""

    def __init__(self, host: str, port: int, path: str, version: str, ready: Callable[[], None]):
        self.target = (host, port, path)
        super().__init__(self._poll(version), ready)
        self.buffer = b""

    def _poll(self, version: str) -> bytes:
        host, port, path = self.target
        return _request(host, port, f"{path}?wait=60&resourceVersion={version}", "*/*")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.ready()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end]
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return
        body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
        if b'"finished":true' in body:
            self.finish(now)
            return
        assert self.transport is not None
        self.transport.write(self._poll(json.loads(body)["resourceVersion"]))


async def _connect(host: str, port: int, follower: _Follower, gate: asyncio.Semaphore) -> None:
    async with gate:
        await asyncio.get_running_loop().create_connection(lambda: follower, host, port)


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
    followers_: list[_Follower] = [
        _SseFollower(_request(host, port, path + "/events", "text/event-stream"), ready)
        if mode == "sse"
        else _LongPollFollower(host, port, path, version, ready)
        for _ in range(n)
    ]
    connecting = [asyncio.create_task(_connect(host, port, f, gate)) for f in followers_]
    tasks = [f.received for f in followers_]
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
    for follower in followers_:
        if follower.transport is not None:
            follower.transport.close()
    for waiting in pending:
        waiting.cancel()
    for task in connecting:
        task.cancel()
    await asyncio.gather(*connecting, return_exceptions=True)
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
