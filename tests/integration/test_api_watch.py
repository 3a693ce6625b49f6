"""Namespace watch streams on the real control plane: a client that reconnects with
``Last-Event-ID`` gets exactly what a client that never left was sent after that event, and
ends up holding what a fresh listing holds; two hundred streams of one caller on one process
follow a restart to its end without one apiserver request (every call through our port is
counted on the real adapter), and the two hundred and first is refused."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from crr_client.sse import EventParser
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.app import create_app, default_kube_factory
from service.config import Settings
from service.kube.port import KubeAPI
from tests.support.api import follow, restarts_url, settled, start_service_in
from tests.support.auth import assert_problem, bearer, new_token, tokens_file
from tests.support.pods import MakePod
from tests.support.serving import serve
from tests.support.waiting import wait_until
from tests.support.watch import Event, Mirror, watch_stream

Obj = dict[str, Any]


def create(api: httpx.Client, namespace: str, pod: str) -> str:
    response = api.post(restarts_url(namespace), json={"pod": pod})
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    return name


def sequence(event: Event) -> int:
    assert event.id
    return int(event.id.rpartition(".")[2])


def test_a_watch_resumed_with_last_event_id_gets_exactly_what_it_missed(
    control_plane: ControlPlane,
    kube: k8s.ApiClient,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
) -> None:
    make_pod("web-0", ["app"])
    make_pod("web-1", ["app"])
    with ExitStack() as stack:
        api = start_service_in(stack, control_plane, [namespace])
        url = restarts_url(namespace)
        first = create(api, namespace, "web-0")
        follow(api, namespace, first)
        first_settled = settled(api, kube, namespace, first)

        client = Mirror()
        # a witness that stays connected the whole time, to compare the resumed stream with
        witness = stack.enter_context(watch_stream(api, url))
        assert witness.listing() == [first_settled]
        simulator.daemon_down = True  # the second restart waits for the test
        with watch_stream(api, url) as stream:
            assert stream.listing() == [first_settled]
            second = create(api, namespace, "web-1")
            seen = stream.until(lambda e: e.name == second)
            assert [e.type for e in seen] == ["ADDED"]
            assert seen[0].data["finished"] is False
            cut = stream.last_event_id
            for event in stream.events:
                client.apply(event)
        assert cut and set(client.objects) == {first, second}

        # while the client is away: the second restart runs to its end, the first is deleted
        simulator.daemon_down = False
        follow(api, namespace, second)
        second_settled = settled(api, kube, namespace, second)
        deleted = api.delete(restarts_url(namespace, first))
        assert deleted.status_code == 200, deleted.text

        def end(event: Event) -> bool:
            return event.type == "DELETED" and event.name == first

        with watch_stream(api, url, last_event_id=cut) as resumed:
            missed = [resumed.next()]
            assert missed[0].type != "RESET", "a full listing instead of what was missed"
            if not end(missed[0]):
                missed += resumed.until(end)
        sent_after_cut = witness.until(end)
        sent_after_cut = sent_after_cut[[e.id for e in sent_after_cut].index(cut) + 1 :]
        assert missed == sent_after_cut  # types, ids and objects alike
        assert {e.type for e in missed} == {"MODIFIED", "DELETED"}  # no listing, nothing twice
        assert [sequence(e) for e in missed] == sorted({sequence(e) for e in missed})
        assert sequence(missed[0]) > sequence(seen[0])
        # its last state: as it was, but at the resourceVersion of its deletion
        last = missed[-1].data
        assert {**last, "resourceVersion": ""} == {**first_settled, "resourceVersion": ""}
        assert int(last["resourceVersion"]) >= int(first_settled["resourceVersion"])
        for event in missed:
            client.apply(event)
        assert client.objects == {second: second_settled}

        with watch_stream(api, url) as fresh:
            assert fresh.listing() == [second_settled]
        # a token this process never issued (another replica's, or from before a restart)
        with watch_stream(api, url, last_event_id="0badc0de.7") as elsewhere:
            assert elsewhere.listing() == [second_settled]
        # filters apply to the stream as to the list
        with watch_stream(api, url, params={"pod": "web-0"}) as on_web_0:
            assert on_web_0.listing() == []


# ---------------------------------------------------------------- two hundred streams


class CountingKube:
    """The real adapter, every call through our port counted (a request to the apiserver
    each, but reading a watch that is already open)."""

    def __init__(self, inner: KubeAPI) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._calls[name] += 1
            return attribute(*args, **kwargs)

        return counted

    def calls(self) -> Counter[str]:
        with self._lock:
            return Counter(self._calls)


STREAMS = 200


async def follow_in_streams(
    base_url: str, token: str, path: str, name: str, simulator: Simulator
) -> tuple[list[list[Obj]], httpx.Response]:
    """Open STREAMS watch streams; once all have their listing, try one more, let the restart
    run, and return what each stream saw of it until it finished (and the refused one)."""
    listed = 0
    all_listed = asyncio.Event()
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=0)

    async with httpx.AsyncClient(
        base_url=base_url, timeout=120, limits=limits, headers=bearer(token)
    ) as client:

        async def one() -> list[Obj]:
            nonlocal listed
            parser = EventParser()
            states: list[Obj] = []
            async with client.stream("GET", path, params={"watch": "true"}) as response:
                assert response.status_code == 200, await response.aread()
                async for line in response.aiter_lines():
                    for event in parser.feed(line.encode()):
                        data = json.loads(event.data)
                        if event.type == "BOOKMARK" and data.get("initialEventsEnd"):
                            listed += 1
                            if listed == STREAMS:
                                all_listed.set()
                        elif event.type in ("ADDED", "MODIFIED") and data["name"] == name:
                            states.append({"event": event.type, "id": event.id, **data})
                            if data["finished"]:
                                return states
            raise AssertionError(f"a stream ended early after {states}")

        tasks = [asyncio.create_task(one()) for _ in range(STREAMS)]
        await asyncio.wait_for(all_listed.wait(), 120)
        refused = await client.get(path, params={"watch": "true"})
        simulator.daemon_down = False
        seen = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return seen, refused


def test_two_hundred_streams_on_one_process_ask_the_apiserver_nothing(
    control_plane: ControlPlane,
    namespace: str,
    make_pod: MakePod,
    simulator: Simulator,
    tmp_path: Path,
) -> None:
    make_pod("web-0", ["app"])
    token = new_token()
    # static tokens: no review per stream to count (kubernetes mode caches its reviews; the
    # point here is what a stream costs)
    tokens = tokens_file(
        tmp_path / "tokens.yaml", {token: {"user": "portal", "namespaces": [namespace]}}
    )
    adapters: list[CountingKube] = []

    def counting_factory(settings: Settings) -> KubeAPI:
        adapter = CountingKube(default_kube_factory(settings))
        adapters.append(adapter)
        return adapter

    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[namespace],
        auth_mode="static",
        auth_tokens_file=tokens,
        record_events=False,  # no Event posted after the create, inside the counted window
        watch_streams_per_caller=STREAMS,
        sse_heartbeat_seconds=0.5,
    )
    path = restarts_url(namespace)
    simulator.daemon_down = True  # the restart waits until every stream is open
    with (
        serve(create_app(settings, kube_factory=counting_factory)) as url,
        httpx.Client(base_url=url, timeout=60, headers=bearer(token)) as api,
    ):
        wait_until("the service to be ready", lambda: api.get("/readyz").status_code == 200)
        name = create(api, namespace, "web-0")
        (adapter,) = adapters
        before = adapter.calls()
        seen, refused = asyncio.run(follow_in_streams(url, token, path, name, simulator))
        after = adapter.calls()

    assert after - before == Counter(), f"apiserver requests while streaming: {after - before}"
    body = assert_problem(refused, 429, "too-many-streams")
    assert f"at most {STREAMS}" in body["detail"]
    # every stream saw the restart through to its end, and all saw the same events
    assert len(seen) == STREAMS
    assert all(states[-1]["result"] == "Succeeded" for states in seen)
    assert all([s["id"] for s in states] == [s["id"] for s in seen[0]] for states in seen)
    assert [s["event"] for s in seen[0]] == ["ADDED"] + ["MODIFIED"] * (len(seen[0]) - 1)
