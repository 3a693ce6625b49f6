"""The pod, rollout and disruption-budget caches on the real control plane: through the real
adapter they fill from the apiserver's lists and follow its watches as the admin creates,
changes and deletes pods, PodDisruptionBudgets, PodUnavailableBudgets and RestartRollouts by
hand. Nothing is mocked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from harness.controlplane import ControlPlane
from service.cache.caches import Caches
from service.config import Settings
from service.kube.adapter import KubeClient
from service.metrics import Metrics
from tests.support.caches import until
from tests.support.pods import pod_manifest
from tests.support.rest import Obj, Rest

ROLLOUTS = "/apis/crr-gateway.io/v1alpha1/namespaces/{ns}/restartrollouts"
PDBS = "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"
PUBS = "/apis/policy.kruise.io/v1alpha1/namespaces/{ns}/podunavailablebudgets"
WEB = {"matchLabels": {"app": "web"}}
TIMEOUT = 20.0  # the watch delivers in well under a second; this only bounds a failure


def run_caches(
    plane: ControlPlane, namespace: str, body: Callable[[Caches], Awaitable[None]]
) -> None:
    async def main() -> None:
        kube = KubeClient(kubeconfig=plane.kubeconfig)
        caches = Caches.build(kube, Settings(namespaces=[namespace]), Metrics())
        await caches.start()
        try:
            await until(lambda: caches.ready, TIMEOUT)
            await body(caches)
        finally:
            await caches.stop()
            kube.close()

    asyncio.run(main())


async def call(admin: Rest, method: str, path: str, body: Obj | None = None, **kw: Any) -> Obj:
    """An admin request, off the event loop the caches run on."""
    return await asyncio.to_thread(admin.ok, method, path, body, **kw)


def pod(name: str, labels: dict[str, str]) -> Obj:
    manifest = pod_manifest(name, ["app", "sidecar"], readiness_gate=True)
    manifest["metadata"]["labels"] = labels
    return manifest


def rollout(name: str) -> Obj:
    return {
        "apiVersion": "crr-gateway.io/v1alpha1",
        "kind": "RestartRollout",
        "metadata": {"name": name, "labels": {"crr-gateway.io/idempotency-key": "k-" + name}},
        "spec": {
            "selector": WEB,
            "podSelector": WEB,
            "maxUnavailable": "50%",
            "resolvedMaxUnavailable": 1,
            "pods": [{"name": "web-0", "uid": "u0"}, {"name": "web-1", "uid": "u1"}],
        },
    }


def test_the_pod_cache_fills_and_follows_pods(
    control_plane: ControlPlane, admin: Rest, namespace: str
) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    admin.ok("POST", pods, pod("web-0", {"app": "web"}))  # before the cache starts: listed

    async def body(caches: Caches) -> None:
        cache = caches.pods
        cached = cache.get(namespace, "web-0")
        assert cached is not None
        assert cached.container_names == ["app", "sidecar"]
        assert cached.spec.readiness_gates == ("KruisePodReady",)
        assert cached.uid and cached.labels == {"app": "web"}

        await call(admin, "POST", pods, pod("web-1", {"app": "web"}))
        await call(admin, "POST", pods, pod("db-0", {"app": "db"}))
        await until(lambda: len(cache.in_namespace(namespace)) == 3, TIMEOUT)
        names = [p.name for p in cache.matching(namespace, WEB)]
        assert names == ["web-0", "web-1"]

        patch = {"metadata": {"labels": {"app": "web"}}}
        await call(
            admin, "PATCH", f"{pods}/db-0", patch, content_type="application/merge-patch+json"
        )
        await until(lambda: len(cache.matching(namespace, WEB)) == 3, TIMEOUT)

        await call(admin, "DELETE", f"{pods}/web-1", gracePeriodSeconds="0")
        await until(lambda: cache.get(namespace, "web-1") is None, TIMEOUT)
        assert [p.name for p in cache.in_namespace(namespace)] == ["db-0", "web-0"]

    run_caches(control_plane, namespace, body)


def test_the_budget_cache_follows_pod_disruption_and_unavailable_budgets(
    control_plane: ControlPlane, admin: Rest, namespace: str
) -> None:
    pdbs, pubs = PDBS.format(ns=namespace), PUBS.format(ns=namespace)
    admin.ok(
        "POST", pdbs, {"metadata": {"name": "web"}, "spec": {"selector": WEB, "minAvailable": 1}}
    )

    async def body(caches: Caches) -> None:
        cache = caches.budgets

        def described() -> list[tuple[str, str, Any, Any]]:
            return [
                (b.kind, b.name, b.min_available, b.max_unavailable)
                for b in cache.in_namespace(namespace)
            ]

        assert described() == [("PodDisruptionBudget", "web", 1, None)]
        pub = {
            "apiVersion": "policy.kruise.io/v1alpha1",
            "kind": "PodUnavailableBudget",
            "metadata": {"name": "web-pub"},
            "spec": {"selector": WEB, "maxUnavailable": "25%"},
        }
        await call(admin, "POST", pubs, pub)
        await until(lambda: len(described()) == 2, TIMEOUT)
        assert described()[1] == ("PodUnavailableBudget", "web-pub", None, "25%")

        change = {"spec": {"minAvailable": "50%"}}
        await call(
            admin, "PATCH", f"{pdbs}/web", change, content_type="application/merge-patch+json"
        )
        await until(lambda: described()[0] == ("PodDisruptionBudget", "web", "50%", None), TIMEOUT)

        await call(admin, "DELETE", f"{pubs}/web-pub")
        await until(lambda: [b.name for b in cache.in_namespace(namespace)] == ["web"], TIMEOUT)

    run_caches(control_plane, namespace, body)


def test_the_rollout_cache_follows_restart_rollouts_made_by_hand(
    control_plane: ControlPlane, admin: Rest, namespace: str
) -> None:
    rollouts = ROLLOUTS.format(ns=namespace)
    admin.ok("POST", rollouts, rollout("first"))

    async def body(caches: Caches) -> None:
        cache = caches.rollouts
        first = cache.get(namespace, "first")
        assert first is not None
        assert [p.pod for p in first.rollout.pods] == ["web-0", "web-1"]
        assert first.rollout.phase == "Progressing" and not first.rollout.finished
        assert first.idempotency == "k-first"
        assert "managedFields" not in first.object["metadata"]
        assert [e.rollout.name for e in cache.active()] == ["first"]

        await call(admin, "POST", rollouts, rollout("second"))
        await until(lambda: cache.get(namespace, "second") is not None, TIMEOUT)
        found = cache.find_idempotent(namespace, "k-second")
        assert found is not None and found.rollout.name == "second"

        # a write of the whole object, as the controller makes it: phase and pods' states
        done = dict(first.object)
        done["status"] = {
            "phase": "Succeeded",
            "pods": [
                {"name": "web-0", "uid": "u0", "state": "Succeeded"},
                {"name": "web-1", "uid": "u1", "state": "Skipped", "message": "gone"},
            ],
        }
        await call(admin, "PUT", f"{rollouts}/first", done)
        await until(
            lambda: (e := cache.get(namespace, "first")) is not None and e.rollout.finished,
            TIMEOUT,
        )
        assert [e.rollout.name for e in cache.active()] == ["second"]

        await call(admin, "DELETE", f"{rollouts}/second")
        await until(
            lambda: (e := cache.get(namespace, "second")) is not None and e.deleted_at is not None,
            TIMEOUT,
        )
        assert cache.active() == []
        assert [e.rollout.name for e in cache.in_namespace(namespace)] == ["first", "second"]

    run_caches(control_plane, namespace, body)
