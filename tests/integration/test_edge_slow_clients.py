"""Slow and idle clients against ``python -m service`` on the real control plane.

Attackers are raw sockets on loopback, bounded in number and time: waves of connections that
send a request line and part of the headers and never finish them. The service must close
each one once the header deadline passes, and keep answering a normal client's polls all
along. Beyond the connection cap, a newcomer is answered 503 at once instead of being held.
No assertion is about time: each wait is bounded generously and the outcome is what is checked.
(The edge cases, on a two-route app: tests/unit/edge/test_connections.py.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from harness.controlplane import ControlPlane
from tests.support.api import restarts_url
from tests.support.raw_http import read_until_closed
from tests.support.service_process import ServiceProcess
from tests.support.waiting import wait_until

WAIT = 30.0  # generous bound on any one wait for the service
WAVES = 3
PER_WAVE = 40  # fewer than the cap: the poller must still find a place
CAP = 64


@contextlib.contextmanager
def service_with(
    control_plane: ControlPlane, namespace: str, log: Path, env: dict[str, str]
) -> Iterator[ServiceProcess]:
    process = ServiceProcess(control_plane.kubeconfig, namespace, log, env)
    try:
        wait_until("the service to be ready", process.ready, timeout=60)
        yield process
    finally:
        process.stop()


def unfinished_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: crr-gateway\r\nX-Never-Ends: ")
    return sock


def test_unfinished_headers_are_closed_while_polls_keep_being_answered(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    env = {"CRR_GATEWAY_HEADER_TIMEOUT_SECONDS": "0.5", "CRR_GATEWAY_MAX_CONNECTIONS": str(CAP)}
    with service_with(control_plane, namespace, tmp_path / "service.log", env) as service:
        answers: list[bytes] = []
        attack_failed: list[BaseException] = []

        def attack() -> None:
            try:
                for _ in range(WAVES):
                    wave = [unfinished_request(service.port) for _ in range(PER_WAVE)]
                    for sock in wave:
                        with sock:
                            answers.append(read_until_closed(sock))
            except BaseException as error:  # reported by the test thread
                attack_failed.append(error)

        attacker = threading.Thread(target=attack, daemon=True)
        polls: list[int] = []
        with httpx.Client(base_url=service.url, timeout=WAIT) as kept_alive:
            attacker.start()
            while attacker.is_alive():
                polls.append(kept_alive.get(restarts_url(namespace)).status_code)
                with httpx.Client(base_url=service.url, timeout=WAIT) as fresh:  # new connection
                    polls.append(fresh.get(restarts_url(namespace)).status_code)
            attacker.join(WAIT)

        assert not attack_failed, f"an attacker was never closed: {attack_failed[0]!r}"
        assert len(answers) == WAVES * PER_WAVE  # every one closed by the service
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), {
            answer[:40] for answer in answers
        }
        assert polls and set(polls) == {200}, polls  # every poll answered during the attack
        assert service.process.poll() is None


def test_beyond_the_cap_newcomers_get_503_and_established_polls_go_on(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cap = 8
    # a long deadline: the idle sockets below must keep their places for the whole test
    env = {"CRR_GATEWAY_HEADER_TIMEOUT_SECONDS": "60", "CRR_GATEWAY_MAX_CONNECTIONS": str(cap)}
    with (
        service_with(control_plane, namespace, tmp_path / "service.log", env) as service,
        httpx.Client(base_url=service.url, timeout=WAIT) as established,
        contextlib.ExitStack() as idle,
    ):
        assert established.get(restarts_url(namespace)).status_code == 200
        for _ in range(cap - 1):
            idle.enter_context(socket.create_connection(("127.0.0.1", service.port), WAIT))

        for _ in range(3):
            with httpx.Client(base_url=service.url, timeout=WAIT) as newcomer:
                refused = newcomer.get(restarts_url(namespace))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["type"] == "urn:crr-gateway:problem:too-many-connections"
            assert established.get(restarts_url(namespace)).status_code == 200

        idle.close()

        def newcomer_served() -> bool:
            with httpx.Client(base_url=service.url, timeout=WAIT) as newcomer:
                return newcomer.get(restarts_url(namespace)).status_code == 200

        wait_until("a newcomer to be served once places are free", newcomer_served, WAIT)
