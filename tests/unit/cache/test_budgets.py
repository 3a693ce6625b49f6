"""The disruption-budget cache over a fake of our own ``KubeAPI`` port: PodDisruptionBudgets
and OpenKruise PodUnavailableBudgets as ``DisruptionBudget``s, a cluster without PUBs, and
readiness over both watches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from service.cache.budgets import BudgetCache, trim_budget
from service.core.errors import KubeForbidden
from service.core.selection import DisruptionBudget
from service.kube.port import PDBS, PUBS
from service.metrics import Metrics
from tests.support.caches import budget_object, run_started, until, watch_event
from tests.support.clock import ManualClock
from tests.support.fake_kube import FakeKube

PDB = "PodDisruptionBudget"
PUB = "PodUnavailableBudget"
WEB = {"matchLabels": {"app": "web"}}


def run(
    kube: FakeKube,
    body: Callable[[BudgetCache, ManualClock, Metrics], Awaitable[None]],
    **settings: Any,
) -> None:
    run_started(lambda s, m, c: BudgetCache(kube, s, m, clock=c), body, **settings)


def test_a_trimmed_budget_keeps_its_identity_and_spec() -> None:
    obj = budget_object(PDB, "web", 3, selector=WEB, min_available="50%")
    assert trim_budget(obj) == {
        "apiVersion": "policy/v1",
        "kind": PDB,
        "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "3"},
        "spec": {"selector": WEB, "minAvailable": "50%"},
    }


def test_both_kinds_are_read_as_disruption_budgets() -> None:
    kube = FakeKube()
    kube.objects[PDBS] = [
        budget_object(PDB, "web", 10, selector=WEB, min_available=2),
        budget_object(PDB, "web", 11, namespace="other", selector=WEB, min_available=1),
    ]
    kube.objects[PUBS] = [
        budget_object(PUB, "web-pub", 12, selector=WEB, max_unavailable="25%"),
        # a PUB given by targetRef has no selector to read: left out (docs/rollouts.md)
        budget_object(PUB, "by-ref", 13, target_ref={"kind": "CloneSet", "name": "web"}),
    ]

    async def body(cache: BudgetCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        assert cache.synced("ns")
        assert cache.in_namespace("ns") == [
            DisruptionBudget(kind=PDB, name="web", selector=WEB, min_available=2),
            DisruptionBudget(kind=PUB, name="web-pub", selector=WEB, max_unavailable="25%"),
        ]
        kube.object_events[PDBS].put(
            watch_event("MODIFIED", budget_object(PDB, "web", 20, selector=WEB, min_available=3))
        )
        kube.object_events[PUBS].put(
            watch_event("DELETED", budget_object(PUB, "web-pub", 21, selector=WEB))
        )
        await until(lambda: len(cache.in_namespace("ns")) == 1)
        assert cache.in_namespace("ns") == [
            DisruptionBudget(kind=PDB, name="web", selector=WEB, min_available=3)
        ]
        assert cache.in_namespace("nowhere") == []

    run(kube, body)


def test_a_cluster_without_pod_unavailable_budgets_has_none_and_is_ready() -> None:
    kube = FakeKube()
    kube.not_served.add(PUBS)
    kube.objects[PDBS] = [budget_object(PDB, "web", 10, selector=WEB, max_unavailable=1)]

    async def body(cache: BudgetCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        assert [b.kind for b in cache.in_namespace("ns")] == [PDB]
        status = cache.scope_status()
        assert status["podunavailablebudgets"]["ns"] == {
            "synced": True,
            "healthy": True,
            "error": None,
        }
        assert kube.object_lists[PUBS] == 1  # looked at again only after a long while

    run(kube, body, relist_backoff_max_seconds=60)


def test_pod_unavailable_budgets_arrive_when_their_crd_does() -> None:
    kube = FakeKube()
    kube.not_served.add(PUBS)

    async def body(cache: BudgetCache, clock: ManualClock, metrics: Metrics) -> None:
        await until(lambda: cache.ready)
        kube.objects[PUBS] = [budget_object(PUB, "pub", 10, selector=WEB, min_available=1)]
        kube.not_served.discard(PUBS)
        await until(lambda: [b.name for b in cache.in_namespace("ns")] == ["pub"])
        assert cache.ready

    run(kube, body, relist_backoff_max_seconds=0.05)


def test_a_failing_watch_of_either_kind_makes_it_unready_and_subscribers_hear_changes() -> None:
    kube = FakeKube()
    kube.object_list_errors[PDBS] = KubeForbidden("poddisruptionbudgets is forbidden")
    heard: list[str] = []

    async def body(cache: BudgetCache, clock: ManualClock, metrics: Metrics) -> None:
        cache.subscribe(heard.append)

        def pdbs() -> dict[str, object]:
            return cache.scope_status()["poddisruptionbudgets"]["ns"]

        await until(lambda: pdbs()["error"] is not None)
        assert "forbidden" in str(pdbs()["error"]) and pdbs()["synced"] is False
        await until(lambda: kube.object_lists[PDBS] >= 2)  # it keeps trying
        assert not cache.ready and not cache.synced("ns")
        del kube.object_list_errors[PDBS]
        await until(lambda: cache.ready)
        heard.clear()
        kube.object_events[PUBS].put(
            watch_event("ADDED", budget_object(PUB, "pub", 30, selector=WEB, min_available=1))
        )
        await until(lambda: heard == ["ns"])
        cache.drain()
        assert cache.draining and not cache.ready

    run(kube, body)
