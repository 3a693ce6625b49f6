"""A bounded load run: two service processes on loopback, a few hundred concurrent clients
mixing creates, polls, long polls, lists and event streams over a set of pods, for a fixed
time. Nothing here is timed: the run must answer no 5xx and lose no restart (every 201 has
its CRR, and reaches a final state through the API).

``CRR_LOAD_CLIENTS`` and ``CRR_LOAD_SECONDS`` size it (defaults fit a CI run: 200 and 25)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from tests.support.api import crrs_in, follow, restarts_url
from tests.support.pods import MakePod
from tests.support.service_process import ServiceProcess, running_replicas

CLIENTS = int(os.environ.get("CRR_LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("CRR_LOAD_SECONDS", "25"))
PODS = [f"load-{i}" for i in range(12)]


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    events: int = 0

    def record(self, what: str, response: httpx.Response) -> None:
        self.statuses[(what, response.status_code)] += 1
        if response.status_code >= 500:
            self.server_errors.append(f"{what} {response.status_code} {response.text[:300]}")


@pytest.fixture
def two_replicas(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[list[ServiceProcess]]:
    env = {"CRR_GATEWAY_SSE_HEARTBEAT_SECONDS": "1"}
    with running_replicas(control_plane.kubeconfig, namespace, tmp_path, env=env) as processes:
        yield processes


async def client_loop(
    number: int, clients: list[httpx.AsyncClient], namespace: str, tally: Tally, until: float
) -> None:
    rng = random.Random(number)
    loop = asyncio.get_running_loop()
    url = restarts_url(namespace)
    while loop.time() < until:
        client = rng.choice(clients)
        known = sorted(tally.created)
        name = rng.choice(known) if known else "not-yet"
        roll = rng.random()
        if roll < 0.12:
            body = {"pod": rng.choice(PODS), "reason": f"load {number}"}
            response = await client.post(url, json=body)
            tally.record("create", response)
            if response.status_code == 201:
                tally.created.add(response.json()["name"])
        elif roll < 0.17:
            response = await client.post(url, params={"dryRun": "true"}, json={"pod": PODS[0]})
            tally.record("dry-run", response)
        elif roll < 0.62:
            wait = rng.choice([0, 0, 0, 1, 2])
            response = await client.get(restarts_url(namespace, name), params={"wait": wait})
            tally.record("poll", response)
        elif roll < 0.82:
            query: dict[str, str | int] = {
                "limit": rng.choice([5, 50, 500]),
                "finished": rng.choice(["true", "false"]),
            }
            response = await client.get(url, params=query)
            tally.record("list", response)
        else:
            await follow_events(client, restarts_url(namespace, name), tally, seconds=3)


async def follow_events(client: httpx.AsyncClient, path: str, tally: Tally, seconds: float) -> None:
    """Read an event stream for a while (or to its end), then hang up."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds), client.stream("GET", path + "/events") as stream:
            tally.record("events", stream)
            if stream.status_code != 200:
                await stream.aread()
                return
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    tally.events += 1


def test_a_bounded_load_answers_no_5xx_and_loses_no_restart(
    two_replicas: list[ServiceProcess], kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    for pod in PODS:
        make_pod(pod, ["app", "sidecar"])

    async def run() -> Tally:
        tally = Tally()
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=replica.url, timeout=60, limits=limits)
                )
                for replica in two_replicas
            ]
            until = asyncio.get_running_loop().time() + SECONDS
            # a task group: one client's failure stops the others before the clients close
            async with asyncio.TaskGroup() as group:
                for i in range(CLIENTS):
                    group.create_task(client_loop(i, clients, namespace, tally, until))
        return tally

    tally = asyncio.run(run())

    assert not tally.server_errors, tally.server_errors[:10]
    assert tally.created, tally.statuses
    # every 201 made its CRR (kruise deletes none: ttlSecondsAfterFinished is 30 minutes)
    in_cluster = {c["metadata"]["name"] for c in crrs_in(kube, namespace)}
    assert tally.created <= in_cluster
    assert in_cluster <= tally.created  # and nothing was made that no caller heard of
    # and every one reaches its end, as either replica tells it
    with (
        httpx.Client(base_url=two_replicas[0].url, timeout=60) as a,
        httpx.Client(base_url=two_replicas[1].url, timeout=60) as b,
    ):
        for index, name in enumerate(sorted(tally.created)):
            final = follow(a if index % 2 else b, namespace, name, timeout=120)[-1]
            assert final["finished"] is True
            assert final["result"] == "Succeeded", final
    statuses = {status for _, status in tally.statuses}
    assert statuses <= {200, 201, 404, 409}, tally.statuses
    print(f"load: {CLIENTS} clients, {SECONDS:.0f} s: {sorted(tally.statuses.items())}")
