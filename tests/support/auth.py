"""Helpers for the caller tests (tests/integration/test_auth_*.py): real service-account
tokens from TokenRequest, RBAC for callers, kubeconfigs for a token, a tokens file, and the
assertions every 401/403 must pass. Plain JSON over HTTPS through ``tests.support.rest.Rest``."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.controlplane import ControlPlane
from service.app import create_app
from service.config import Settings
from tests.support.deploy import DEPLOY
from tests.support.pods import pod_is_running, pod_manifest
from tests.support.rest import Rest
from tests.support.serving import serve
from tests.support.waiting import wait_until

PROBLEM = "application/problem+json"
AUDIENCE = "crr-gateway"
Obj = dict[str, Any]


def ensure_namespace(admin: Rest, name: str) -> None:
    admin.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})


def ensure_service_account(admin: Rest, namespace: str, name: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    status, answer = admin.call("POST", path, {"metadata": {"name": name}})
    assert status in (201, 409), answer.get("message")


def mint(admin: Rest, namespace: str, account: str, audiences: list[str] | None = None) -> str:
    """A TokenRequest token for the account (for ``audiences``; None: the apiserver's)."""
    spec: Obj = {"expirationSeconds": 3600}
    if audiences is not None:
        spec["audiences"] = audiences
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    token: str = admin.ok("POST", path, body)["status"]["token"]
    return token


def caller_cluster_role(admin: Rest, suffix: str) -> str:
    """deploy/gateway/caller-clusterrole.yaml as it is, under a name of this test's own
    (cluster-scoped objects are shared by the whole session). Returns the name."""
    role: Obj = yaml.safe_load((DEPLOY / "gateway/caller-clusterrole.yaml").read_text())
    name = f"{role['metadata']['name']}-{suffix}"
    role["metadata"]["name"] = name
    admin.ok("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    return name


def delete_cluster_role(admin: Rest, name: str) -> None:
    admin.call("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")


def bind(admin: Rest, namespace: str, role: str, account_namespace: str, account: str) -> None:
    """A RoleBinding in ``namespace`` of the ClusterRole ``role`` to a service account, as
    docs/auth.md tells a portal's owner to do."""
    admin.ok(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": f"{account}-{role}"[:63].rstrip("-")},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
            ],
        },
    )


def may_create(admin: Rest, account_namespace: str, account: str, namespace: str) -> bool:
    review = admin.ok(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "spec": {
                "user": f"system:serviceaccount:{account_namespace}:{account}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{account_namespace}"],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": "create",
                    "group": "apps.kruise.io",
                    "resource": "containerrecreaterequests",
                },
            }
        },
    )
    allowed: bool = review["status"]["allowed"]
    return allowed


def run_pod(admin: Rest, namespace: str, name: str, containers: list[str]) -> Obj:
    """A pod the simulated kubelet runs (the session's simulator must be started)."""
    admin.ok("POST", f"/api/v1/namespaces/{namespace}/pods", pod_manifest(name, containers))

    def running() -> Obj | None:
        pod = admin.ok("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        return pod if pod_is_running(pod) else None

    pod: Obj = wait_until(f"pod {namespace}/{name} running", running)
    return pod


def token_kubeconfig(plane: ControlPlane, token: str, path: Path) -> Path:
    """A kubeconfig that speaks to the test apiserver with ``token`` (no client cert)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {"server": plane.url, "certificate-authority": str(plane.pki.ca_cert)},
            }
        ],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": "test", "user": "token"}}],
        "current-context": "token",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def tokens_file(path: Path, identities: dict[str, Obj]) -> Path:
    """A static-mode tokens file: ``{token: {user, groups, namespaces}}`` stored by hash."""
    document = {hashlib.sha256(t.encode()).hexdigest(): who for t, who in identities.items()}
    path.write_text(json.dumps(document) if path.suffix == ".json" else yaml.safe_dump(document))
    return path


def new_token() -> str:
    return secrets.token_urlsafe(32)


@contextmanager
def running_service(settings: Settings, *, ready: bool = True) -> Iterator[httpx.Client]:
    with ExitStack() as stack:
        url = stack.enter_context(serve(create_app(settings)))
        client = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        if ready:
            wait_until("the service to be ready", lambda: client.get("/readyz").status_code == 200)
        yield client


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> Obj:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: Obj = response.json()
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == f"urn:crr-gateway:problem:{slug}", body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return body
