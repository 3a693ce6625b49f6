"""What production throws at the service, on the real control plane: the apiserver away, a slow
apiserver, kruise-manager away, SIGTERM with requests in flight, a storm of duplicate creates on
two replicas. (A watch that expires with 410 Gone: test_faults_watch_expiry.py; the
simulated daemon down until the deadline: test_api_restarts.py.)"""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.app import create_app
from service.edge.server import GRACEFUL_SHUTDOWN_SECONDS
from tests.support.api import GROUP, PLURAL, assert_problem, crrs_in, follow, restarts_url
from tests.support.faultproxy import FaultProxy
from tests.support.pods import MakePod
from tests.support.service_process import ServiceProcess, open_settings, running_replicas
from tests.support.serving import serve
from tests.support.sockets import requests_read
from tests.support.sse import Snapshot, event_stream
from tests.support.waiting import wait_until

Restart = dict[str, Any]
STALE = '299 - "stale: apiserver unreachable since '
RETRY_LATER = {503, 504}  # the apiserver, or kruise's webhook, not (yet) answering


def start(stack: ExitStack, kubeconfig: Path, namespace: str, **overrides: Any) -> httpx.Client:
    url = stack.enter_context(
        serve(create_app(open_settings(kubeconfig, [namespace], **overrides)))
    )
    client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
    wait_until("the service to be ready", lambda: client.get("/readyz").status_code == 200)
    return client


def create(api: httpx.Client, namespace: str, **body: Any) -> str:
    response = api.post(restarts_url(namespace), json=body)
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    return name


def read_crr(kube: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    crr: dict[str, Any] = k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, "v1beta1", namespace, PLURAL, name
    )
    return crr


def follow_from(base_url: str, namespace: str, name: str, timeout: float) -> list[Restart]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        return follow(client, namespace, name, timeout=timeout)


def creates_work_again(api: httpx.Client, namespace: str, pod: str) -> str:
    """Once the cluster is back (kruise's webhook sees pods, the simulator runs), a create
    on ``pod`` succeeds: its name. Until then the service may only say "retry" (503 or 504,
    as problem+json); any other answer fails the test. A create answered 504 may still have
    landed (the 504 says so): the pod's restart is then that one, named by the 409."""

    def created() -> str | None:
        response = api.post(restarts_url(namespace), json={"pod": pod})
        if response.status_code in RETRY_LATER:
            assert_problem(response, response.status_code)
            return None
        if response.status_code == 409:
            assert_problem(response, 409, "restart-in-progress")
            landed: str = response.json()["activeRestart"]
            return landed
        assert response.status_code == 201, response.text
        name: str = response.json()["name"]
        return name

    made: str = wait_until(f"creates on {pod} to work again", created, timeout=120, interval=1)
    return made


# ---------------------------------------------------------------- the apiserver goes away


def test_apiserver_outage_polls_answer_stale_creates_503_and_no_change_is_lost(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
) -> None:
    pods = [f"web-{i}" for i in range(4)]
    for pod in pods:
        make_pod(pod, ["app"])
    with ExitStack() as stack:
        api = start(stack, control_plane.kubeconfig, namespace, watch_timeout_seconds=5)
        base_url = str(api.base_url)
        simulator.slow_seconds = 1.0  # the restarts are on their way when the apiserver goes
        names = [create(api, namespace, pod=pod) for pod in pods]
        stop_polling = threading.Event()
        polled: list[tuple[int, bool]] = []  # (status, stale) of every read, as they come

        def poll() -> None:
            """Mixed reads all along: polls of every restart and the list."""
            with httpx.Client(base_url=base_url, timeout=30) as client:
                while not stop_polling.is_set():
                    for path in [
                        *(restarts_url(namespace, n) for n in names),
                        restarts_url(namespace),
                    ]:
                        response = client.get(path)
                        polled.append((response.status_code, "warning" in response.headers))
                    time.sleep(0.05)  # pacing, not waiting: a steady trickle of reads

        with ThreadPoolExecutor(len(names) + 1) as pool:
            followers = [pool.submit(follow_from, base_url, namespace, n, 240) for n in names]
            poller = pool.submit(poll)
            unfinished = [
                n for n in names if not api.get(restarts_url(namespace, n)).json()["finished"]
            ]
            assert unfinished, "every restart finished before the outage: nothing to prove"

            control_plane.stop_apiserver()
            try:
                wait_until("readiness to fail", lambda: api.get("/readyz").status_code == 503)
                # creates: 503, and when to come back
                refused = api.post(restarts_url(namespace), json={"pod": pods[0]})
                body = assert_problem(refused, 503, "kube-unavailable")
                assert int(refused.headers["retry-after"]) > 0
                assert "cannot reach the apiserver" in body["detail"]
                # polls and lists: answered from the cache, marked stale
                got = api.get(restarts_url(namespace, unfinished[0]))
                assert got.status_code == 200
                assert got.headers["warning"].startswith(STALE), got.headers
                assert got.json()["finished"] is False
                listed = api.get(restarts_url(namespace))
                assert listed.status_code == 200
                assert listed.headers["warning"].startswith(STALE)
                assert sorted(r["name"] for r in listed.json()["items"]) == sorted(names)
                # mixed traffic goes on against the cache
                stale_reads = sum(stale for _, stale in polled)
                wait_until(
                    "more reads answered stale",
                    lambda: sum(stale for _, stale in polled) >= stale_reads + 10,
                )
            finally:
                control_plane.start_apiserver()

            wait_until("readiness to return", lambda: api.get("/readyz").status_code == 200, 90)
            assert "warning" not in api.get(restarts_url(namespace, names[0])).headers
            finals = [f.result()[-1] for f in followers]
            stop_polling.set()
            poller.result()

        # every poll during the outage was answered, and some said they may be stale
        assert {status for status, _ in polled} == {200}
        assert any(stale for _, stale in polled)
        # every restart reached its end, as the apiserver has it: no change was lost
        assert [f["result"] for f in finals] == ["Succeeded"] * len(names), finals
        for name in names:
            crr = read_crr(kube, namespace, name)
            assert crr["status"]["phase"] == "Completed"

            def same_as_apiserver(name: str = name) -> bool:
                served = api.get(restarts_url(namespace, name)).json()
                current = read_crr(kube, namespace, name)
                return bool(served["resourceVersion"] == current["metadata"]["resourceVersion"])

            wait_until(f"the cache to hold {name} as the apiserver does", same_as_apiserver)
        # and new restarts work end to end (leaves the cluster as found)
        simulator.slow_seconds = 0
        make_pod("after-0", ["app"])
        again = creates_work_again(api, namespace, "after-0")
        assert follow(api, namespace, again)[-1]["result"] == "Succeeded"


# ---------------------------------------------------------------- a slow apiserver


def test_a_slow_or_silent_apiserver_gets_504_and_nothing_hangs(
    control_plane: ControlPlane, namespace: str, make_pod: MakePod, tmp_path: Path
) -> None:
    make_pod("web-0", ["app"])
    make_pod("web-1", ["app"])
    with FaultProxy(control_plane.apiserver_port) as proxy, ExitStack() as stack:
        kubeconfig = proxy.kubeconfig(control_plane.kubeconfig, tmp_path / "proxied.kubeconfig")
        api = start(stack, kubeconfig, namespace, request_timeout_seconds=1)
        name = create(api, namespace, pod="web-0")  # through the proxy, at full speed
        # the client gives up after 30 s, long after the service must have: a hang fails

        proxy.delay = 3.0  # every chunk either way takes 3 s: beyond the 1 s timeout
        body = assert_problem(
            api.post(restarts_url(namespace), json={"pod": "web-1"}),
            504,
            "kube-timeout",
        )
        assert "did not answer in time" in body["detail"]
        assert_problem(api.delete(restarts_url(namespace, name)), 504, "kube-timeout")
        # reads never wait for the apiserver
        assert api.get(restarts_url(namespace, name)).status_code == 200

        proxy.delay = 0
        proxy.paused = True  # silence: connects succeed, nothing comes back
        assert_problem(
            api.post(restarts_url(namespace), json={"pod": "web-1"}),
            504,
            "kube-timeout",
        )
        assert_problem(
            api.post(
                restarts_url(namespace),
                params={"dryRun": "true"},
                json={"pod": "web-1"},
            ),
            504,
        )
        assert api.get(restarts_url(namespace)).status_code == 200

        proxy.paused = False
        again = creates_work_again(api, namespace, "web-1")
        assert follow(api, namespace, again)[-1]["result"] == "Succeeded"


# ---------------------------------------------------------------- kruise-manager goes away


def test_kruise_manager_down_creates_503_and_a_restart_ends_by_deadline_once_it_is_back(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
) -> None:
    make_pod("web-0", ["app"])
    make_pod("web-1", ["app"])
    with ExitStack() as stack:
        api = start(stack, control_plane.kubeconfig, namespace)
        base_url = str(api.base_url)
        simulator.daemon_down = True  # nothing on the node moves it either
        name = create(api, namespace, pod="web-0", activeDeadlineSeconds=3)

        control_plane.stop_kruise()
        with ThreadPoolExecutor(1) as pool:
            try:
                # no webhook: kruise cannot validate a new restart, so none is made
                refused = api.post(restarts_url(namespace), json={"pod": "web-1"})
                body = assert_problem(refused, 503)
                assert "webhook" in body["detail"], body
                assert int(refused.headers["retry-after"]) > 0
                assert [c["metadata"]["name"] for c in crrs_in(kube, namespace)] == [name]
                # past its deadline, but nobody has ended it: the service says so, no more
                created_at = datetime.fromisoformat(
                    read_crr(kube, namespace, name)["metadata"]["creationTimestamp"]
                )
                wait_until(
                    "the restart's deadline to pass",
                    lambda: datetime.now(UTC) > created_at + timedelta(seconds=3 + 1),
                )
                pending = api.get(restarts_url(namespace, name)).json()
                assert pending["finished"] is False and pending["result"] is None, pending
                # a follower waits across kruise's return; the node agent is back meanwhile
                follower = pool.submit(follow_from, base_url, namespace, name, 120)
                simulator.daemon_down = False
            finally:
                control_plane.start_kruise()
            final = follower.result()[-1]

        # kruise-manager back: the deadline is enforced, with the reason
        assert final["result"] == "Failed"
        assert final["failureReason"] == "DeadlineExceeded"
        assert final["message"] == "recreating has exceeded the activeDeadlineSeconds"
        again = creates_work_again(api, namespace, "web-1")
        assert follow(api, namespace, again)[-1]["result"] == "Succeeded"


# ---------------------------------------------------------------- SIGTERM


def _follow_stream(base_url: str, path: str, opened: threading.Event) -> list[Snapshot]:
    """A restart's events until the server ends the stream; ``opened`` is set once the first
    snapshot came (the stream then waits for a change)."""
    with (
        httpx.Client(base_url=base_url, timeout=60) as client,
        event_stream(client, path) as stream,
    ):
        stream.next()
        opened.set()
        return stream.read_to_end()  # raises if the stream is cut mid-message


def test_sigterm_answers_in_flight_requests_and_exits_within_the_grace(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
    tmp_path: Path,
) -> None:
    others = [f"web-{i}" for i in range(1, 7)]
    for pod in ["web-0", *others]:
        make_pod(pod, ["app"])
    simulator.daemon_down = True  # restarts stay active: long polls and streams would wait
    service = ServiceProcess(control_plane.kubeconfig, namespace, tmp_path / "service.log")
    try:
        wait_until("the service to be ready", service.ready, timeout=60)
        with httpx.Client(base_url=service.url, timeout=60) as api:
            name = create(api, namespace, pod="web-0")
            version = api.get(restarts_url(namespace, name)).json()["resourceVersion"]
        path = restarts_url(namespace, name)
        term = threading.Event()

        def long_poll() -> httpx.Response:
            with httpx.Client(base_url=service.url, timeout=60) as client:
                return client.get(path, params={"wait": 60, "resourceVersion": version})

        def keep_creating() -> list[tuple[str, int, dict[str, Any]]]:
            """Creates back to back until the service stops taking requests."""
            answered: list[tuple[str, int, dict[str, Any]]] = []
            with httpx.Client(base_url=service.url, timeout=60) as client:
                for pod in itertools.cycle(others):
                    try:
                        response = client.post(restarts_url(namespace), json={"pod": pod})
                    except httpx.TransportError:
                        if term.is_set():
                            return answered
                        raise
                    answered.append((pod, response.status_code, response.json()))
            raise AssertionError("unreachable")

        with ThreadPoolExecutor(8) as pool:
            polls = [pool.submit(long_poll) for _ in range(3)]
            opened = [threading.Event() for _ in range(2)]
            streams = [
                pool.submit(_follow_stream, service.url, path + "/events", o) for o in opened
            ]
            wait_until("the streams to be open", lambda: all(o.is_set() for o in opened))
            # the long polls too are in the service's hands: it has read their requests
            wait_until(
                "the service to hold the long polls",
                lambda: requests_read(service.port) >= len(polls) + len(streams),
            )

            creator = pool.submit(keep_creating)
            wait_until("creates to be under way", lambda: len(crrs_in(kube, namespace)) >= 2)
            term.set()
            service.signal(signal.SIGTERM)
            exit_code = service.process.wait(GRACEFUL_SHUTDOWN_SECONDS + 5)
            poll_answers = [p.result() for p in polls]
            followed = [s.result() for s in streams]
            created = creator.result()
    finally:
        service.stop()
    log = service.log.read_text()

    # uvicorn shuts down, then re-raises the signal it caught: the exit is "by SIGTERM"
    assert exit_code in (0, -signal.SIGTERM), log[-3000:]
    # uvicorn did not have to cut anything off at the end of the grace period
    assert "timeout graceful shutdown exceeded" not in log, log[-3000:]
    # the long polls were woken and answered the state they had
    for answer in poll_answers:
        assert answer.status_code == 200
        assert answer.json()["name"] == name and answer.json()["finished"] is False
    # the streams sent the restart and ended cleanly (the client reconnects elsewhere)
    for snapshots in followed:
        assert snapshots and all(s.restart["name"] == name for s in snapshots), snapshots
    # every create was answered in full, and each CRR made was answered 201
    assert created
    assert {status for _, status, _ in created} <= {201, 409}, created
    made = sorted(body["name"] for _, status, body in created if status == 201)
    assert sorted(c["metadata"]["name"] for c in crrs_in(kube, namespace)) == sorted([name, *made])


# ---------------------------------------------------------------- duplicate creates


@pytest.fixture
def replicas(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[list[ServiceProcess]]:
    with running_replicas(control_plane.kubeconfig, namespace, tmp_path) as processes:
        yield processes


def test_fifty_concurrent_duplicate_creates_on_two_replicas_make_one_restart(
    replicas: list[ServiceProcess], kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web-0", ["app", "sidecar"])
    body = {"pod": "web-0", "reason": "storm"}
    headers = {"Idempotency-Key": "storm-1"}

    async def storm() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with (
            httpx.AsyncClient(base_url=replicas[0].url, timeout=60, limits=limits) as a,
            httpx.AsyncClient(base_url=replicas[1].url, timeout=60, limits=limits) as b,
        ):
            posts = [
                (a if i % 2 else b).post(restarts_url(namespace), json=body, headers=headers)
                for i in range(50)
            ]
            return list(await asyncio.gather(*posts))

    responses = asyncio.run(storm())

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["name"] for r in responses}) == 1
    (crr,) = crrs_in(kube, namespace)
    assert crr["metadata"]["name"] == responses[0].json()["name"]
