"""``python -m service`` as a child process (replicas, SIGTERM), and settings for in-process
services, for the fault and load tests. Callers are not authenticated here (``auth_mode``
none, on loopback) and not rate limited: those tests are about the restart path."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.config import Settings
from tests.support.serving import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

OPEN_ACCESS_ENV = {
    "CRR_GATEWAY_AUTH_MODE": "none",
    "CRR_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
    "CRR_GATEWAY_MAX_ACTIVE_RESTARTS_PER_NAMESPACE": "0",
    "CRR_GATEWAY_RECORD_EVENTS": "false",
}


def open_settings(kubeconfig: Path, namespaces: list[str], **overrides: Any) -> Settings:
    """Settings of an in-process service for these tests (fast relists, short heartbeats)."""
    values: dict[str, Any] = {
        "kubeconfig": kubeconfig,
        "namespaces": namespaces,
        "auth_mode": "none",
        "rate_limit_per_second": 0,
        "max_active_restarts_per_namespace": 0,
        "record_events": False,
        "sse_heartbeat_seconds": 0.5,
        "relist_backoff_initial_seconds": 0.2,
        "relist_backoff_max_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


class ServiceProcess:
    """``verify``: the service serves HTTPS (its env names the files) and a client trusting
    its CA is this context."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        log: Path,
        env: dict[str, str] | None = None,
        *,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.port = free_port()
        self.verify: ssl.SSLContext | bool = verify or True
        self.url = f"{'https' if verify else 'http'}://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            **OPEN_ACCESS_ENV,
            "CRR_GATEWAY_KUBECONFIG": str(kubeconfig),
            "CRR_GATEWAY_NAMESPACES": namespace,
            "CRR_GATEWAY_LOG_LEVEL": "warning",
            "PORT": str(self.port),
            **(env or {}),
        }
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service"], cwd=ROOT, env=environment, stdout=out, stderr=out
            )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"service exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/readyz", timeout=2, verify=self.verify).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextlib.contextmanager
def running_replicas(
    kubeconfig: Path,
    namespace: str,
    logs: Path,
    *,
    count: int = 2,
    env: dict[str, str] | None = None,
) -> Iterator[list[ServiceProcess]]:
    """``count`` service processes on one cluster, ready when the block starts, stopped after."""
    processes = [
        ServiceProcess(kubeconfig, namespace, logs / f"replica-{i}.log", env) for i in range(count)
    ]
    try:
        for process in processes:
            wait_until(f"replica on {process.port} to be ready", process.ready, timeout=60)
        yield processes
    finally:
        for process in processes:
            process.stop()
