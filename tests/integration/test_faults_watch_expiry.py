"""410 Gone: the service's watch comes back after etcd was compacted past the version it holds.
The cache must relist and stay correct: changes and deletions made while it was away show up,
whether it serves namespaces by name or the whole cluster (``CRR_GATEWAY_NAMESPACES=*``).

This needs its own control plane: kube-apiserver's watch cache would serve recent versions from
memory for minutes, so the apiserver here runs with ``--watch-cache=false`` (watches go to etcd,
where a compacted revision is 410). The service reaches the apiserver through a ``FaultProxy``
that holds its traffic while the cluster moves on without it."""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from service.app import create_app
from tests.support.api import GROUP, PLURAL, follow, restarts_url
from tests.support.faultproxy import FaultProxy
from tests.support.pods import run_pod
from tests.support.service_process import open_settings
from tests.support.serving import serve
from tests.support.waiting import wait_until
from tests.support.watch_expiry import UncachedCluster, compact_etcd, expired_relists


@pytest.mark.parametrize("scope", ["namespaces", "cluster-wide"])
def test_a_watch_that_expires_relists_and_the_cache_stays_correct(
    uncached_cluster: UncachedCluster, tmp_path: Path, scope: str
) -> None:
    """Across two namespaces, served by name (a watch each) or with ``*`` (one watch of
    the whole cluster): every watch that resumes past the compaction relists, and each
    namespace ends up as the apiserver has it."""
    plane, admin, node_agents = (
        uncached_cluster.plane,
        uncached_cluster.kube,
        uncached_cluster.simulator,
    )
    team_a, team_b = (f"expiry-{scope}-{team}-{secrets.token_hex(2)}" for team in "ab")
    crrs = k8s.CustomObjectsApi(admin)
    for namespace in (team_a, team_b):
        k8s.CoreV1Api(admin).create_namespace({"metadata": {"name": namespace}})
    run_pod(admin, team_a, "web-0")
    run_pod(admin, team_b, "web-1")
    run_pod(admin, team_b, "web-2")

    def crr(namespace: str, name: str) -> dict[str, Any]:
        got: dict[str, Any] = crrs.get_namespaced_custom_object(
            GROUP, "v1beta1", namespace, PLURAL, name
        )
        return got

    served, watches = (
        ([team_a, team_b], [team_a, team_b]) if scope == "namespaces" else (["*"], ["*"])
    )
    with FaultProxy(plane.apiserver_port) as proxy, ExitStack() as stack:
        kubeconfig = proxy.kubeconfig(plane.kubeconfig, tmp_path / "proxied.kubeconfig")
        # watches end (cleanly) every second, and resume from the last version seen
        settings = open_settings(kubeconfig, served, watch_timeout_seconds=1)
        url = stack.enter_context(serve(create_app(settings)))
        api = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        wait_until("the service to be ready", lambda: api.get("/readyz").status_code == 200)

        node_agents.daemon_down = True  # the restarts wait until the service is cut off
        kept = api.post(restarts_url(team_a), json={"pod": "web-0"}).json()["name"]
        dropped = api.post(restarts_url(team_b), json={"pod": "web-1"}).json()["name"]
        assert api.get(restarts_url(team_a, kept)).json()["finished"] is False
        assert [expired_relists(api, watch) for watch in watches] == [0] * len(watches)

        proxy.paused = True  # the service hears nothing from here on
        try:
            # while it is away: one restart is deleted unfinished, one is made by someone
            # else, and both others run to their end
            crrs.delete_namespaced_custom_object(GROUP, "v1beta1", team_b, PLURAL, dropped)
            crrs.create_namespaced_custom_object(
                GROUP,
                "v1beta1",
                team_b,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/v1beta1",
                    "kind": "ContainerRecreateRequest",
                    "metadata": {"name": "made-elsewhere"},
                    "spec": {"podName": "web-2", "containers": [{"name": "app"}]},
                },
            )
            node_agents.daemon_down = False
            for namespace, name in ((team_a, kept), (team_b, "made-elsewhere")):

                def completed(namespace: str = namespace, name: str = name) -> bool:
                    return bool(crr(namespace, name).get("status", {}).get("phase") == "Completed")

                wait_until(f"{name} to complete", completed)
            # and the history the service would resume from is compacted away
            compact_etcd(plane)
        finally:
            proxy.paused = False

        for watch in watches:

            def relisted(watch: str = watch) -> bool:
                return expired_relists(api, watch) >= 1

            wait_until(f"a 410 and a relist of {watch}", relisted)
        final = follow(api, team_a, kept)[-1]
        assert final["result"] == "Succeeded", final
        assert final["resourceVersion"] == crr(team_a, kept)["metadata"]["resourceVersion"]
        elsewhere = follow(api, team_b, "made-elsewhere")[-1]
        assert elsewhere["result"] == "Succeeded"
        assert elsewhere["requestedBy"] is None  # not made through the service
        gone = api.get(restarts_url(team_b, dropped)).json()
        assert gone["finished"] is True
        assert gone["result"] == "Failed" and gone["failureReason"] == "Deleted"
        # each namespace lists its own restarts only, the deleted one as it was last seen
        listed = {
            namespace: [r["name"] for r in api.get(restarts_url(namespace)).json()["items"]]
            for namespace in (team_a, team_b)
        }
        assert listed == {team_a: [kept], team_b: sorted([dropped, "made-elsewhere"])}
        assert api.get("/readyz").status_code == 200
