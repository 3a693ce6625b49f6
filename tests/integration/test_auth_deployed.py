"""The service running as its deployed identity: deploy/ applied to the test apiserver (an
overlay with fresh namespaces, as test_deploy.py builds it), a TokenRequest token for the
deployed ``crr-gateway`` service account in a kubeconfig, and the service run with it (never
admin), authenticating callers in ``kubernetes`` mode. A restart in the served namespace goes
through end to end; in a namespace the deployment does not serve, with the service's own check
switched off (its settings list that namespace too), the apiserver itself refuses, and the
service answers 403, never 500."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.config import Settings
from tests.support.auth import (
    AUDIENCE,
    assert_problem,
    bearer,
    bind,
    ensure_namespace,
    ensure_service_account,
    may_create,
    mint,
    run_pod,
    running_service,
    token_kubeconfig,
)
from tests.support.deploy import kustomize, self_rules, service_overlay
from tests.support.rest import Obj, Rest
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Deployment:
    served: str
    unserved: str
    kubeconfig: Path  # the deployed service account's identity
    caller_token: str  # a caller bound to crr-gateway-caller in both namespaces


@pytest.fixture(scope="module")
def deployment(
    control_plane: ControlPlane,
    admin: Rest,
    _simulator: Simulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    tag = secrets.token_hex(3)
    served, unserved, home = f"served-{tag}", f"unserved-{tag}", f"crr-gateway-{tag}"
    for namespace in (served, unserved):
        ensure_namespace(admin, namespace)
        run_pod(admin, namespace, "web-0", ["nginx", "sidecar"])
    root = tmp_path_factory.mktemp("deployed")
    docs: list[Obj] = kustomize(
        service_overlay(root / "overlay", service_namespace=home, served=served, suffix=f"-{tag}")
    )
    control_plane.kubectl(
        "apply", "--server-side", "--field-manager=test-auth", "-f", "-",
        input=yaml.safe_dump_all(docs),
    )  # fmt: skip
    try:
        account = f"crr-gateway-{tag}"
        token = mint(admin, home, account)
        identity = Rest(control_plane, token)
        try:
            wait_until(
                "the deployed service account's bindings",
                lambda: ("", "pods", "get") in self_rules(identity, served),
            )
        finally:
            identity.close()
        kubeconfig = token_kubeconfig(control_plane, token, root / "kubeconfig")

        # a portal's service account, granted the caller role in BOTH namespaces: only the
        # service's own identity stands between it and the unserved one
        ensure_namespace(admin, f"portal-{tag}")
        ensure_service_account(admin, f"portal-{tag}", "portal")
        for namespace in (served, unserved):
            bind(admin, namespace, f"crr-gateway-caller-{tag}", f"portal-{tag}", "portal")
            wait_until(
                f"the portal's binding in {namespace}",
                lambda ns=namespace: may_create(admin, f"portal-{tag}", "portal", ns),  # type: ignore[misc]
            )
        caller = mint(admin, f"portal-{tag}", "portal", [AUDIENCE])
        yield Deployment(served, unserved, kubeconfig, caller)
    finally:
        cluster_scoped = [doc for doc in docs if doc["kind"].startswith("Cluster")]
        control_plane.kubectl(
            "delete", "--ignore-not-found", "-f", "-", input=yaml.safe_dump_all(cluster_scoped)
        )


def settings(deployment: Deployment, namespaces: list[str]) -> Settings:
    return Settings(
        kubeconfig=deployment.kubeconfig,
        namespaces=namespaces,
        auth_mode="kubernetes",
        auth_audiences=[AUDIENCE],
        relist_backoff_initial_seconds=0.2,
        relist_backoff_max_seconds=1.0,
    )


def test_as_its_deployed_identity_the_service_restarts_in_a_served_namespace(
    deployment: Deployment, admin: Rest
) -> None:
    ns = deployment.served
    headers = bearer(deployment.caller_token)
    with running_service(settings(deployment, [ns])) as client:
        created = client.post(
            f"/v1/namespaces/{ns}/restarts",
            json={"pod": "web-0", "containers": ["nginx"], "reason": "deployed identity"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        name = created.json()["name"]
        url = f"/v1/namespaces/{ns}/restarts/{name}"
        restart = client.get(url, headers=headers).json()
        while not restart["finished"]:
            response = client.get(
                url,
                params={"wait": 20, "resourceVersion": restart["resourceVersion"]},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            restart = response.json()
        assert restart["result"] == "Succeeded", restart
        assert restart["requestedBy"].endswith(":portal")
        # its Role lets it record the Event too
        wait_until(
            "the RestartRequested event",
            lambda: any(
                e["reason"] == "RestartRequested" and name in e["message"]
                for e in admin.ok("GET", f"/api/v1/namespaces/{ns}/events")["items"]
            ),
        )


def test_in_an_unserved_namespace_the_apiserver_refuses_and_the_service_says_403(
    deployment: Deployment,
) -> None:
    served, unserved = deployment.served, deployment.unserved
    headers = bearer(deployment.caller_token)
    # the service's own namespace check is off for `unserved`: its settings list it
    with running_service(settings(deployment, [served, unserved]), ready=False) as client:

        def scopes() -> dict[str, Obj] | None:
            answer = client.get("/readyz")
            if answer.status_code == 200:
                return None
            found: dict[str, Obj] | None = answer.json().get("scopes")
            if not found or not found[served]["synced"] or not found[unserved]["error"]:
                return None
            return found

        checks = wait_until("the served scope synced, the other refused", scopes)
        assert "forbidden" in str(checks[unserved]["error"]).lower()
        assert client.get("/readyz").status_code == 503  # it cannot serve what it lists

        refused = client.post(
            f"/v1/namespaces/{unserved}/restarts", json={"pod": "web-0"}, headers=headers
        )
        body = assert_problem(refused, 403, "kube-forbidden")
        assert "forbidden" in body["detail"]
        removed = client.delete(f"/v1/namespaces/{unserved}/restarts/anything", headers=headers)
        assert_problem(removed, 403, "kube-forbidden")
        # the served namespace keeps working meanwhile
        ok = client.get(f"/v1/namespaces/{served}/restarts", headers=headers)
        assert ok.status_code == 200, ok.text
