"""service.kube.recorder: Events posted off the request's path, one at a time and in order,
behind a bounded queue; a failed or dropped Event never reaches the caller."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from service.core.objects import KubeObject
from service.kube.recorder import EventRecorder
from tests.support.fake_kube import FakeKube


def event(n: int) -> KubeObject:
    return {"metadata": {"namespace": "ns", "name": f"e{n}"}, "reason": "RestartRequested"}


class RecordingKube(FakeKube):
    """Notes each Event posted and the most posts in flight at once; ``gate`` holds posts."""

    def __init__(self, *, failing: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.posted: list[str] = []
        self.most_at_once = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self._failing = failing

    def create_event(self, namespace: str, body: KubeObject) -> KubeObject:
        with self._lock:
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)
        try:
            self.gate.wait(10)
            name = str(body["metadata"]["name"])
            if name in self._failing:
                raise RuntimeError("the apiserver said no")
            with self._lock:
                self.posted.append(name)
            return body
        finally:
            with self._lock:
                self._in_flight -= 1


def test_events_are_posted_one_at_a_time_in_the_order_recorded() -> None:
    kube = RecordingKube()

    async def main() -> None:
        recorder = EventRecorder(kube, enabled=True)
        for n in range(20):
            recorder.record(event(n))
        await recorder.drain()

    asyncio.run(main())
    assert kube.posted == [f"e{n}" for n in range(20)]
    assert kube.most_at_once == 1


def test_a_full_queue_drops_the_newest_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    kube = RecordingKube()
    kube.gate.clear()  # the first post waits, so the queue fills behind it

    async def main() -> None:
        recorder = EventRecorder(kube, enabled=True, max_queued=3)
        recorder.record(event(0))
        await asyncio.sleep(0)  # the worker takes e0 and waits in its post
        while kube.most_at_once == 0:
            await asyncio.sleep(0.01)
        for n in range(1, 6):
            recorder.record(event(n))
        kube.gate.set()
        await recorder.drain()

    with caplog.at_level(logging.WARNING, logger="service.kube.recorder"):
        asyncio.run(main())
    assert kube.posted == ["e0", "e1", "e2", "e3"]
    assert "Events dropped so far: 1 (the queue of 3 Events to post is full)" in caplog.text


def test_a_failed_post_is_logged_and_the_next_ones_are_posted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = RecordingKube(failing=frozenset({"e1"}))

    async def main() -> None:
        recorder = EventRecorder(kube, enabled=True)
        for n in range(3):
            recorder.record(event(n))
        await recorder.drain()

    with caplog.at_level(logging.WARNING, logger="service.kube.recorder"):
        asyncio.run(main())
    assert kube.posted == ["e0", "e2"]
    assert "could not record Event RestartRequested" in caplog.text
    assert "the apiserver said no" in caplog.text


def test_a_disabled_recorder_posts_nothing() -> None:
    kube = RecordingKube()

    async def main() -> None:
        recorder = EventRecorder(kube, enabled=False)
        recorder.record(event(0))
        await recorder.drain()

    asyncio.run(main())
    assert kube.posted == []
