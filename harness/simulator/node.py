"""The :class:`Simulator`: the kubelet and kruise-daemon of one node, sharing its container runtime.

The decisions live in the pure modules; :mod:`~harness.simulator.kubelet_agent` and
:mod:`~harness.simulator.daemon_agent` run them from list/watch loops and work queues.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from kubernetes import client as k8s

from harness.simulator.apiserver import NodeApi
from harness.simulator.daemon_agent import DaemonAgent
from harness.simulator.kubelet_agent import KubeletAgent
from harness.simulator.runtime import INJECTED_KILL_FAILURE, ContainerRuntime

log = logging.getLogger(__name__)

REAL_DAEMON_CRR_VERSIONS = ("v1beta1",)
"""What kruise v1.9.0's daemon can work with: its CRR informer is v1beta1 only."""

STOP_JOIN_SECONDS = 5.0


class Simulator:
    """The kubelet and kruise-daemon of one node, acting through the apiserver.

    ``crr_versions`` are the CRR versions the daemon may work with, in order of preference. The
    default is the real daemon's; ``("v1beta1", "v1alpha1")`` is a deliberate opt-in for tests of
    a cluster that serves v1alpha1 only (the version is chosen once, when it is first served).

    Failure injection (any time; :meth:`reset` restores the defaults):

    * :meth:`fail_kill` - killing that container fails with that message (the pod annotation
      ``crr-gateway.test/fail-kill`` does the same from outside the test process);
    * ``slow_seconds`` - the daemon waits that long before each of its writes and kills;
    * ``daemon_down`` - the daemon half writes nothing (the kubelet half keeps running).
    """

    def __init__(
        self,
        api_client: k8s.ApiClient,
        node_name: str,
        *,
        crr_versions: tuple[str, ...] = REAL_DAEMON_CRR_VERSIONS,
    ) -> None:
        self.node_name = node_name
        self.runtime = ContainerRuntime()
        self._stop = threading.Event()
        api = NodeApi(api_client, node_name)
        self._kubelet = KubeletAgent(api, self.runtime, self._stop)
        self._daemon = DaemonAgent(
            api, self.runtime, self._stop, self._kubelet.pod_changed, crr_versions
        )
        self._threads: list[threading.Thread] = []

    @property
    def crr_version(self) -> str | None:
        """The CRR version the daemon works with (None until one of its versions is served)."""
        return self._daemon.crr_version

    @property
    def served_crr_versions(self) -> set[str] | None:
        """The CRR versions the cluster served when the daemon last looked (None before)."""
        return self._daemon.served_crr_versions

    @property
    def slow_seconds(self) -> float:
        return self._daemon.slow_seconds

    @slow_seconds.setter
    def slow_seconds(self, seconds: float) -> None:
        self._daemon.slow_seconds = seconds

    @property
    def daemon_down(self) -> bool:
        return self._daemon.daemon_down

    @daemon_down.setter
    def daemon_down(self, down: bool) -> None:
        self._daemon.daemon_down = down

    def start(self) -> None:
        if self._threads:
            return
        for name, target in [*self._kubelet.threads(), *self._daemon.threads()]:
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kubelet.close()
        self._daemon.close()
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
            if thread.is_alive():
                log.warning("simulator thread %s did not stop in time", thread.name)

    def fail_kill(
        self, namespace: str, pod: str, container: str, message: str = INJECTED_KILL_FAILURE
    ) -> None:
        self._daemon.fail_kill(namespace, pod, container, message)

    def reset(self) -> None:
        self._daemon.reset()


@contextlib.contextmanager
def running_simulator(
    api_client: k8s.ApiClient,
    node_name: str,
    *,
    crr_versions: tuple[str, ...] = REAL_DAEMON_CRR_VERSIONS,
) -> Iterator[Simulator]:
    """A started simulator for the block; stopped (threads joined) when it ends."""
    sim = Simulator(api_client, node_name, crr_versions=crr_versions)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
