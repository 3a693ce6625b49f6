"""Server-sent events resumed with ``Last-Event-ID``, on the real control plane: the same
replica sends no snapshot the client says it has and the current one for an older id; after a
replica drains on SIGTERM, another one carries on from the client's last id to the finished
snapshot. Every event's id is the restart's resourceVersion, so "no duplicate" means no id
twice across the connections of one follower."""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path

import httpx
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from tests.support.api import restarts_url, settled, start_service_in
from tests.support.pods import MakePod
from tests.support.service_process import running_replicas
from tests.support.sse import Snapshot, event_stream

FAST_HEARTBEATS = {"CRR_GATEWAY_SSE_HEARTBEAT_SECONDS": "0.5"}


def ids(snapshots: list[Snapshot]) -> list[str | None]:
    return [s.id for s in snapshots]


def assert_followed_to_success(snapshots: list[Snapshot]) -> None:
    """What a follower must have seen: each snapshot once, its id its version, the last one
    the finished restart and no finished one before it."""
    assert snapshots, "no snapshot at all"
    assert len(set(ids(snapshots))) == len(snapshots), ids(snapshots)
    assert all(s.type == "restart" for s in snapshots)
    assert all(s.id == s.restart["resourceVersion"] for s in snapshots)
    assert [s.restart["finished"] for s in snapshots] == [False] * (len(snapshots) - 1) + [True]
    assert snapshots[-1].restart["result"] == "Succeeded", snapshots[-1].restart


def test_resuming_on_the_same_replica_sends_what_the_client_lacks_and_nothing_twice(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
) -> None:
    make_pod("web-0", ["app"])
    simulator.daemon_down = True  # the restart waits until the test lets it go
    with ExitStack() as stack:
        api = start_service_in(stack, control_plane, [namespace])
        created = api.post(restarts_url(namespace), json={"pod": "web-0"})
        assert created.status_code == 201, created.text
        name = created.json()["name"]
        events = restarts_url(namespace, name) + "/events"

        with event_stream(api, events) as first:
            seen = [first.next()]
            first.quiet()
        assert seen[0].restart["finished"] is False

        # reconnect saying we have that snapshot: none is sent until the restart changes
        with event_stream(api, events, last_event_id=seen[0].id) as resumed:
            resumed.quiet()
            assert resumed.snapshots == []
            simulator.daemon_down = False
            rest = resumed.read_to_end()
        assert seen[0].id not in ids(rest)
        assert_followed_to_success(seen + rest)

        # kruise-manager still writes a finished CRR once (it drops the active label): from
        # here on the restart no longer changes
        current = settled(api, kube, namespace, name)
        # an older id than the current one: the current snapshot, once, and the end
        with event_stream(api, events, last_event_id=seen[0].id) as late:
            assert ids(late.read_to_end()) == [current["resourceVersion"]]
            assert late.snapshots[0].restart == current
        # the current id: nothing to send, and the stream ends at once
        with event_stream(api, events, last_event_id=current["resourceVersion"]) as done:
            assert done.read_to_end() == []
        # no id at all: the current snapshot
        with event_stream(api, events) as fresh:
            assert ids(fresh.read_to_end()) == [current["resourceVersion"]]


def test_a_follower_moves_to_another_replica_when_its_replica_drains(
    control_plane: ControlPlane,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
    tmp_path: Path,
) -> None:
    make_pod("web-0", ["app"])
    simulator.daemon_down = True
    with running_replicas(control_plane.kubeconfig, namespace, tmp_path, env=FAST_HEARTBEATS) as (
        draining,
        other,
    ):
        with (
            httpx.Client(base_url=draining.url, timeout=60) as a,
            httpx.Client(base_url=other.url, timeout=60) as b,
        ):
            created = a.post(restarts_url(namespace), json={"pod": "web-0"})
            assert created.status_code == 201, created.text
            events = restarts_url(namespace, created.json()["name"]) + "/events"

            with event_stream(a, events) as on_a:
                on_a.next()
                on_a.quiet()  # mid-stream: the restart has not finished
                draining.signal(signal.SIGTERM)
                # the draining replica ends the stream cleanly, with nothing more to say
                seen = on_a.read_to_end()
            assert len(seen) == 1 and seen[0].restart["finished"] is False
            draining.process.wait(30)  # it exits once drained

            # the follower reconnects to the other replica with the last id it has
            with event_stream(b, events, last_event_id=seen[-1].id) as on_b:
                on_b.quiet()  # the other replica holds the same version: nothing to repeat
                assert on_b.snapshots == []
                simulator.daemon_down = False
                rest = on_b.read_to_end()

    assert rest, "the other replica sent nothing after the drain"
    assert_followed_to_success(seen + rest)
