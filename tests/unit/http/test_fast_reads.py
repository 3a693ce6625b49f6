"""One behaviour: every poll case sent to the app with its fast path for cached reads
(``service.http.fast_reads``) and to the same app without it gets the same status, headers and
body; the metrics series come out the same; and the fast path did answer the cached hits, the
long polls that wait included (a change, the wait running out, a deletion, a stale cache, a
client that leaves while its poll waits).

Two apps over two fakes of our own ``KubeAPI`` port holding the same objects, with the
``kubernetes`` authentication mode (the fakes answer the token and access reviews), served by
the real uvicorn."""

from __future__ import annotations

import re
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.core.errors import KubeUnavailable
from service.core.identity import Caller
from service.core.objects import KubeObject
from service.kube.port import ROLLOUTS, Resource
from tests.support.caches import rollout_object
from tests.support.crrs import crr
from tests.support.fake_kube import FakeKube
from tests.support.serving import serve
from tests.support.waiting import wait_until

GOOD, OTHER, BAD = "good-token", "other.token_2", "bad-token"
SERVED = ["ns", "locked"]  # the good caller may get in ns only; OTHER nowhere


def _crr(name: str, rv: int, *, completed: bool, namespace: str = "ns") -> KubeObject:
    obj = crr(phase="Completed" if completed else "Recreating", completed=completed)
    obj["metadata"].update(name=name, namespace=namespace, resourceVersion=str(rv))
    return obj


class ReviewKube(FakeKube):
    """Token and access reviews as the apiserver answers them, counted."""

    def __init__(self) -> None:
        super().__init__()
        self.items = [
            _crr("done-abcde", 40, completed=True),
            _crr("running-abcde", 41, completed=False),
            _crr("locked-abcde", 42, completed=True, namespace="locked"),
        ]
        paused = rollout_object("roll", 7, phase="Paused")  # left alone by the controller
        paused["spec"]["paused"] = True
        paused["status"]["message"] = "paused"
        self.objects[ROLLOUTS] = [paused, rollout_object("finished", 8, phase="Succeeded")]
        self.reviews = 0

    def review_token(self, token: str, audiences: Sequence[str]) -> KubeObject:
        self.reviews += 1
        if token not in (GOOD, OTHER):
            return {"authenticated": False, "error": "invalid bearer token"}
        user = {"username": f"system:serviceaccount:ns:{token[:5]}", "uid": "u", "groups": []}
        return {"authenticated": True, "audiences": list(audiences), "user": user}

    def replace_object(
        self, resource: Resource, namespace: str, name: str, body: KubeObject
    ) -> KubeObject:
        return body  # the controller's write, as it was: nothing changes in the caches

    def review_access(self, spec: KubeObject) -> KubeObject:
        self.reviews += 1
        allowed = (
            spec["user"].endswith(":good-") and spec["resourceAttributes"]["namespace"] == "ns"
        )
        return {"allowed": allowed}


@dataclass
class Side:
    app: FastAPI
    kube: ReviewKube
    client: httpx.Client
    authentications: int = 0


def _side(stack: ExitStack, *, fast: bool) -> Side:
    kube = ReviewKube()
    settings = Settings(
        namespaces=SERVED,
        auth_mode="kubernetes",
        max_wait_seconds=10,
        # allowed reviews kept for the whole module: "the fast path answered" is then only
        # about the path, never about a review that ran out between two requests
        auth_cache_ttl_seconds=600,
        authz_cache_ttl_seconds=600,
    )
    app = create_app(settings, kube_factory=lambda _settings: kube, fast_reads=fast)
    url = stack.enter_context(serve(app))
    client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
    wait_until("the app to be ready", lambda: client.get("/readyz").status_code == 200)
    side = Side(app, kube, client)
    authenticate: Callable[[str], Awaitable[Caller]] = app.state.auth.authenticate

    async def counted(token: str) -> Caller:  # every request the routes' dependency sees
        side.authentications += 1
        return await authenticate(token)

    app.state.auth.authenticate = counted
    return side


@pytest.fixture(scope="module")
def sides() -> Iterator[tuple[Side, Side]]:
    with ExitStack() as stack:
        yield _side(stack, fast=True), _side(stack, fast=False)


RESTART = "/v1/namespaces/ns/restarts/done-abcde"
RUNNING = "/v1/namespaces/ns/restarts/running-abcde"
ROLLOUT = "/v1/namespaces/ns/rollouts/roll"

# (method, path, token, extra headers): every case a poll can be
CASES: list[tuple[str, str, str | None, dict[str, str]]] = [
    # hits, cold (reviews not cached yet) then warm
    ("GET", RESTART, GOOD, {}),
    ("GET", RESTART, GOOD, {}),
    ("GET", RESTART, GOOD, {"X-Request-Id": "portal-123.a_b"}),
    ("GET", RESTART, GOOD, {"X-Request-Id": "not sane!"}),
    ("GET", RESTART, GOOD, {"Authorization": "bearer good-token"}),
    ("GET", RESTART, GOOD, {"Accept": "application/json", "User-Agent": "portal/1"}),
    ("GET", ROLLOUT, GOOD, {}),
    ("GET", ROLLOUT, GOOD, {}),
    ("GET", "/v1/namespaces/ns/rollouts/finished?wait=30", GOOD, {}),
    # wait: answered at once (finished; moved on from the version given; 0), or a real wait
    ("GET", RESTART + "?wait=30", GOOD, {}),
    ("GET", RESTART + "?wait=0&resourceVersion=40", GOOD, {}),
    ("GET", RUNNING + "?wait=5&resourceVersion=7", GOOD, {}),
    ("GET", RUNNING + "?resourceVersion=41", GOOD, {}),
    ("GET", RUNNING + "?wait=1", GOOD, {}),
    ("GET", RUNNING + "?wait=1&resourceVersion=41", GOOD, {}),
    ("GET", ROLLOUT + "?wait=1", GOOD, {}),
    # misses and names the routes refuse
    ("GET", "/v1/namespaces/ns/restarts/gone-abcde", GOOD, {}),
    ("GET", "/v1/namespaces/ns/rollouts/gone", GOOD, {}),
    ("GET", "/v1/namespaces/ns/restarts/Upper", GOOD, {}),
    ("GET", "/v1/namespaces/ns/restarts/" + "a" * 254, GOOD, {}),
    ("GET", "/v1/namespaces/ns/rollouts/with.dot", GOOD, {}),
    ("GET", "/v1/namespaces/ns/restarts/done-abcde%0A", GOOD, {}),
    ("GET", "/v1/namespaces/N_S/restarts/done-abcde", GOOD, {}),
    ("GET", RESTART + "/", GOOD, {}),
    ("GET", "/v1/namespaces/ns/other/done-abcde", GOOD, {}),
    # bad query values
    ("GET", RESTART + "?wait=-1", GOOD, {}),
    ("GET", RESTART + "?wait=61", GOOD, {}),
    ("GET", RESTART + "?wait=abc", GOOD, {}),
    ("GET", RESTART + "?wait=", GOOD, {}),
    ("GET", RESTART + "?wait=1&wait=2", GOOD, {}),
    ("GET", RESTART + "?resourceVersion=" + "9" * 65, GOOD, {}),
    ("GET", RESTART + "?resourceVersion=abc", GOOD, {}),
    ("GET", RESTART + "?other=1", GOOD, {}),
    # not served, unauthenticated, denied
    ("GET", "/v1/namespaces/kube-system/restarts/done-abcde", GOOD, {}),
    ("GET", RESTART, None, {}),
    ("GET", RESTART, BAD, {}),
    ("GET", RESTART, BAD, {}),
    ("GET", RESTART, None, {"Authorization": "Basic Zm9vOmJhcg=="}),
    ("GET", RESTART, None, {"Authorization": "Bearer"}),
    ("GET", RESTART, None, {"Authorization": "Bearer  good-token"}),
    ("GET", RESTART, None, {"Authorization": "Bearer good-token\tx"}),
    ("GET", RESTART, "x" * 20_000, {}),
    ("GET", RESTART, OTHER, {}),
    ("GET", RESTART, OTHER, {}),
    ("GET", "/v1/namespaces/locked/restarts/locked-abcde", GOOD, {}),
    ("GET", "/v1/namespaces/locked/restarts/locked-abcde", GOOD, {}),
    # what other middlewares act on, and other methods
    ("GET", RESTART, GOOD, {"Content-Type": "text/plain", "Content-Length": "0"}),
    ("GET", RESTART, GOOD, {"Origin": "https://portal.example"}),
    ("HEAD", RESTART, GOOD, {}),
    ("DELETE", "/v1/namespaces/ns/restarts/Upper", GOOD, {}),
]

_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_IGNORED = {"date", "server", "x-request-id"}


def _send(
    side: Side, method: str, path: str, token: str | None, extra: dict[str, str]
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    headers.update(extra)
    # the path as written (httpx would normalise %0A and the like)
    request = side.client.build_request(method, path, headers=headers)
    request.url = request.url.copy_with(raw_path=path.encode())
    return side.client.send(request)


View = tuple[int, list[tuple[str, str]], bytes]


def _view(response: httpx.Response, sent_id: str | None) -> View:
    request_id = response.headers.get("x-request-id", "")
    if sent_id is not None and re.fullmatch(r"[A-Za-z0-9._-]{1,128}", sent_id):
        assert request_id == sent_id
    else:
        assert _REQUEST_ID.fullmatch(request_id), request_id
    base = str(response.request.url.copy_with(raw_path=b"", query=None)).rstrip("/")
    headers = [
        (k, v.replace(base, "<base>"))
        for k, v in response.headers.multi_items()
        if k not in _IGNORED
    ]
    return response.status_code, headers, response.content


def _since_masked(view: View) -> View:
    status, headers, body = view
    masked = [(k, _SINCE.sub("since <time>", v)) for k, v in headers]
    return status, masked, body


_SINCE = re.compile(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _series(side: Side) -> list[str]:
    text = side.client.get("/metrics").text
    wanted = (
        "crr_gateway_http_requests_total{",
        "crr_gateway_http_request_duration_seconds_count{",
    )
    # not the scrapes' own series: a test may scrape one side more often while it waits
    lines = (line for line in text.splitlines() if 'route="/metrics"' not in line)
    return sorted(line for line in lines if line.startswith(wanted))


def _make_stale(side: Side) -> None:
    side.kube.list_error = KubeUnavailable("refused")
    side.kube.object_list_errors[ROLLOUTS] = KubeUnavailable("refused")
    for _scope in SERVED:  # one watch per served namespace, all reading the fake's one queue
        side.kube.events.put(KubeUnavailable("stream broken"))
        side.kube.object_events[ROLLOUTS].put(KubeUnavailable("stream broken"))
    services = side.app.state.services
    wait_until(
        "the watches to be lost",
        lambda: None not in (services.cache.stale_since("ns"), services.rollouts.stale_since("ns")),
    )


def test_every_poll_case_answers_the_same_with_and_without_the_fast_path(
    sides: tuple[Side, Side],
) -> None:
    fast, routes = sides
    for method, path, token, extra in CASES:
        answers = [
            _view(_send(s, method, path, token, extra), extra.get("X-Request-Id")) for s in sides
        ]
        assert answers[0] == answers[1], (method, path, token, extra)
    assert _series(fast) == _series(routes)
    # the fast path answered the warm hits itself: neither the dependency nor a review ran
    assert fast.authentications < routes.authentications
    assert fast.kube.reviews == routes.kube.reviews
    before = fast.authentications
    for side in sides:  # both, so that the metrics stay comparable
        assert _send(side, "GET", RESTART, GOOD, {}).status_code == 200
        assert _send(side, "GET", ROLLOUT, GOOD, {}).status_code == 200
    assert fast.authentications == before


def test_a_long_poll_waits_for_the_change_on_both_paths(sides: tuple[Side, Side]) -> None:
    for side in sides:
        waiters: dict[tuple[str, str], object] = side.app.state.services.cache._waiters
        with ThreadPoolExecutor(1) as pool:
            poll = pool.submit(
                _send, side, "GET", RUNNING + "?wait=10&resourceVersion=41", GOOD, {}
            )
            wait_until("the poll to wait", lambda: ("ns", "running-abcde") in waiters)  # noqa: B023
            side.kube.events.put(
                {"type": "MODIFIED", "object": _crr("running-abcde", 43, completed=True)}
            )
            answer = poll.result()
        assert answer.status_code == 200
        assert answer.json()["resourceVersion"] == "43" and answer.json()["finished"] is True


Event = dict[str, object]  # a watch event, as the fakes' queues take it
Change = Callable[[Side], None]  # what happens while a poll waits, done to one side


def _restart_event(kind: str, name: str, rv: int, *, completed: bool = False) -> Event:
    return {"type": kind, "object": _crr(name, rv, completed=completed)}


def _paused_rollout(name: str, rv: int, message: str) -> KubeObject:
    obj = rollout_object(name, rv, phase="Paused")  # left alone by the controller
    obj["spec"]["paused"] = True
    obj["status"]["message"] = message
    return obj


def _put_restart(side: Side, event: Event) -> None:
    side.kube.events.put(event)


def _put_rollout(side: Side, event: Event) -> None:
    side.kube.object_events[ROLLOUTS].put(event)


def _has(side: Side, resource: str, name: str, rv: str) -> bool:
    services = side.app.state.services
    store = services.cache if resource == "restarts" else services.rollouts
    entry = store.get("ns", name)
    return entry is not None and entry.resource_version == rv


def _waiting(side: Side, resource: str, name: str) -> bool:
    services = side.app.state.services
    store = services.cache if resource == "restarts" else services.rollouts
    return ("ns", name) in store._waiters


def _warm(sides: Sequence[Side]) -> None:
    """Both sides' reviews of the good caller cached (each test may run on its own worker)."""
    for side in sides:
        assert _send(side, "GET", RESTART, GOOD, {}).status_code == 200


def _poll_while(side: Side, resource: str, name: str, query: str, change: Change) -> View:
    """A long poll of ``ns/name`` that is waiting when ``change`` happens; its answer."""
    path = f"/v1/namespaces/ns/{resource}/{name}?{query}"
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(_send, side, "GET", path, GOOD, {})
        wait_until("the poll to wait", lambda: _waiting(side, resource, name))
        change(side)
        return _view(poll.result(), None)


# (resource, name, what the cache holds first, the poll's query, what happens while it waits)
WAITS: list[tuple[str, str, Event, str, Callable[[Side], None]]] = [
    (  # an intermediate change arrives: its state, not finished, is the answer
        "restarts",
        "changes-abcde",
        _restart_event("ADDED", "changes-abcde", 60),
        "wait=10&resourceVersion=60",
        lambda side: _put_restart(side, _restart_event("MODIFIED", "changes-abcde", 61)),
    ),
    (  # no resourceVersion: the wait is for a change from the current one
        "restarts",
        "finishes-abcde",
        _restart_event("ADDED", "finishes-abcde", 62),
        "wait=10",
        lambda side: _put_restart(
            side, _restart_event("MODIFIED", "finishes-abcde", 63, completed=True)
        ),
    ),
    (  # nothing changes: when the wait runs out, the current object
        "restarts",
        "quiet-abcde",
        _restart_event("ADDED", "quiet-abcde", 64),
        "wait=1&resourceVersion=64",
        lambda side: None,
    ),
    (  # deleted while waited for: its last state
        "restarts",
        "deleted-abcde",
        _restart_event("ADDED", "deleted-abcde", 66),
        "resourceVersion=66&wait=10",
        lambda side: _put_restart(side, _restart_event("DELETED", "deleted-abcde", 67)),
    ),
    (  # a rollout's change
        "rollouts",
        "waited",
        {"type": "ADDED", "object": _paused_rollout("waited", 20, "paused")},
        "wait=10&resourceVersion=20",
        lambda side: _put_rollout(
            side, {"type": "MODIFIED", "object": _paused_rollout("waited", 21, "still paused")}
        ),
    ),
]


def test_long_polls_that_wait_answer_the_same_and_the_fast_path_answers_them(
    sides: tuple[Side, Side],
) -> None:
    fast, routes = sides
    _warm(sides)
    authentications = fast.authentications
    for resource, name, first, query, change in WAITS:
        put = _put_restart if resource == "restarts" else _put_rollout
        rv = first["object"]["metadata"]["resourceVersion"]  # type: ignore[index]
        for side in sides:
            put(side, first)
            wait_until("the object in the cache", lambda: _has(side, resource, name, rv))  # noqa: B023
        answers = [_poll_while(side, resource, name, query, change) for side in sides]
        assert answers[0] == answers[1], (resource, name, query)
        status, _, body = answers[0]
        assert status == 200 and body
    assert fast.authentications == authentications  # the routes' dependency never ran
    assert _series(fast) == _series(routes)


def _hits(side: Side) -> int:
    """The successful GETs of a restart counted so far."""
    labels = ('route="/v1/namespaces/{namespace}/restarts/{name}"', 'method="GET"', 'status="200"')
    for line in _series(side):
        if line.startswith("crr_gateway_http_requests_total{") and all(x in line for x in labels):
            return int(float(line.split()[-1]))
    return 0


def test_a_client_that_leaves_while_its_poll_waits_is_counted_the_same(
    sides: tuple[Side, Side],
) -> None:
    fast, routes = sides
    _warm(sides)
    authentications = fast.authentications
    name = "left-abcde"
    for side in sides:
        _put_restart(side, _restart_event("ADDED", name, 90))
        wait_until("the object in the cache", lambda: _has(side, "restarts", name, "90"))  # noqa: B023
        before = _hits(side)
        url = side.client.base_url
        with socket.create_connection((url.host, url.port)) as client:
            client.sendall(
                f"GET /v1/namespaces/ns/restarts/{name}?wait=10&resourceVersion=90 HTTP/1.1\r\n"
                f"Host: {url.host}\r\nAuthorization: Bearer {GOOD}\r\n\r\n".encode()
            )
            wait_until("the poll to wait", lambda: _waiting(side, "restarts", name))  # noqa: B023
        _put_restart(side, _restart_event("MODIFIED", name, 91))  # the poll ends, to no one
        wait_until("the poll to be counted", lambda: _hits(side) == before + 1)  # noqa: B023
        assert not _waiting(side, "restarts", name)
        assert _send(side, "GET", RESTART, GOOD, {}).status_code == 200  # still serving
    assert fast.authentications == authentications
    assert _series(fast) == _series(routes)


def test_stale_answers_carry_the_same_warning(sides: tuple[Side, Side]) -> None:
    _warm(sides)
    fast, routes = sides
    authentications = fast.authentications
    for side in sides:
        _put_restart(side, _restart_event("ADDED", "stale-abcde", 95))
        wait_until("the object in the cache", lambda: _has(side, "restarts", "stale-abcde", "95"))  # noqa: B023
    # the watch is lost while a poll waits: when its wait runs out, it answers with the warning
    waited = [
        _since_masked(_poll_while(s, "restarts", "stale-abcde", "wait=2", _make_stale))
        for s in sides
    ]
    assert waited[0] == waited[1]
    assert any(k == "warning" and "stale" in v for k, v in waited[0][1])
    assert fast.authentications == authentications
    for path in (RESTART, ROLLOUT):
        # each app lost its watch at its own second: the rest of the warning must be the same
        answers = [_since_masked(_view(_send(s, "GET", path, GOOD, {}), None)) for s in sides]
        assert answers[0] == answers[1]
        status, headers, _ = answers[0]
        assert status == 200 and any(k == "warning" and "stale" in v for k, v in headers)
    assert _series(fast) == _series(routes)
