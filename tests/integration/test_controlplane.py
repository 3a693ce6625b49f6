"""The harness is real: the apiserver enforces RBAC and verifies real tokens, kruise's own webhook
and controller run, and the simulated node carries a CRR through to the end."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from harness.build import KUBERNETES_VERSION, kruise_source_dir
from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from tests.support.pods import MakePod, read_pod
from tests.support.waiting import wait_until

GROUP = "apps.kruise.io"
VERSION = "v1alpha1"
PLURAL = "containerrecreaterequests"


def crr(name: str, pod: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ContainerRecreateRequest",
        "metadata": {"name": name},
        "spec": {"podName": pod, "containers": containers, **spec},
    }


def get_crr(kube: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def completed(kube: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get_crr(kube, namespace, name)
    return obj if obj.get("status", {}).get("phase") == "Completed" else None


def token_for(kube: k8s.ApiClient, namespace: str, account: str, audience: str = "") -> str:
    core = k8s.CoreV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    spec: dict[str, Any] = {"expirationSeconds": 600}
    if audience:
        spec["audiences"] = [audience]
    request = core.create_namespaced_service_account_token(account, namespace, {"spec": spec})
    token: str = request.status.token
    return token


def client_with_token(control_plane: ControlPlane, token: str) -> k8s.ApiClient:
    config = k8s.Configuration()
    config.host = control_plane.url
    config.ssl_ca_cert = str(control_plane.pki.ca_cert)
    config.api_key = {"authorization": f"Bearer {token}"}
    return k8s.ApiClient(config)


def test_apiserver_reports_the_pinned_version(control_plane: ControlPlane) -> None:
    assert control_plane.version() == KUBERNETES_VERSION


def test_every_kruise_crd_is_installed(kube: k8s.ApiClient) -> None:
    expected = set()
    for path in (kruise_source_dir() / "config/crd/bases").glob("*.yaml"):
        expected.add(yaml.safe_load(path.read_text())["metadata"]["name"])
    crds = k8s.ApiextensionsV1Api(kube).list_custom_resource_definition().items
    assert expected and expected <= {crd.metadata.name for crd in crds}


def test_service_account_needs_a_role_binding_to_create_a_crr(
    control_plane: ControlPlane, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web-0", ["app"])
    token = token_for(kube, namespace, "portal")
    body = crr("by-portal", "web-0", [{"name": "app"}])
    with client_with_token(control_plane, token) as portal:
        with pytest.raises(ApiException) as denied:
            k8s.CustomObjectsApi(portal).create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body
            )
        assert denied.value.status == 403
        assert "system:serviceaccount:" + namespace + ":portal" in str(denied.value.body)

        rbac = k8s.RbacAuthorizationV1Api(kube)
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "crr-creator"},
                "rules": [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["create"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "portal-crr-creator"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "crr-creator",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "portal", "namespace": namespace}],
            },
        )

        def create() -> dict[str, Any] | None:
            try:
                api = k8s.CustomObjectsApi(portal)
                created: dict[str, Any] = api.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, body
                )
            except ApiException as err:
                if err.status == 403:  # the RBAC authorizer's informer has not caught up yet
                    return None
                raise
            return created

        created = wait_until("the role binding to take effect", create, timeout=10)
        assert created["metadata"]["name"] == "by-portal"


def test_token_request_tokens_pass_token_review_and_made_up_ones_do_not(
    kube: k8s.ApiClient, namespace: str
) -> None:
    token = token_for(kube, namespace, "caller", audience="crr-gateway")
    auth = k8s.AuthenticationV1Api(kube)

    real = auth.create_token_review({"spec": {"token": token, "audiences": ["crr-gateway"]}})
    assert real.status.authenticated is True
    assert real.status.user.username == f"system:serviceaccount:{namespace}:caller"
    assert real.status.audiences == ["crr-gateway"]

    other_audience = auth.create_token_review({"spec": {"token": token}})
    assert not other_audience.status.authenticated

    forged = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)
    for made_up in ("not-a-token", forged):
        review = auth.create_token_review({"spec": {"token": made_up}})
        assert not review.status.authenticated


def test_kruise_webhook_rejects_a_crr_for_a_missing_pod(
    kube: k8s.ApiClient, namespace: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, crr("ghost", "no-such-pod", [{"name": "app"}])
        )
    message = json.loads(rejected.value.body)["message"]
    assert 'admission webhook "mcontainerrecreaterequest.kb.io" denied the request' in message
    assert "no found Pod named no-such-pod" in message


def test_kruise_webhook_rejects_ports_in_crr_containers(
    kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    make_pod("web-0", ["app"], ports=True)
    body = crr("with-ports", "web-0", [{"name": "app", "ports": [{"containerPort": 8080}]}])
    with pytest.raises(ApiException) as rejected:
        k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
    message = json.loads(rejected.value.body)["message"]
    assert "preStop, ports, statusContext in container are ready-only fields" in message


def test_kubectl_crr_completes_through_the_simulator_and_is_deleted_after_ttl(
    control_plane: ControlPlane, kube: k8s.ApiClient, namespace: str, make_pod: MakePod
) -> None:
    before = make_pod("web-0", ["nginx", "sidecar"])
    ids_before = {s["name"]: s["containerID"] for s in before["status"]["containerStatuses"]}
    body = crr(
        "restart-both",
        "web-0",
        [{"name": "nginx"}, {"name": "sidecar"}],
        ttlSecondsAfterFinished=3,
    )
    control_plane.kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))

    # kruise's webhook filled in what it owns
    created = get_crr(kube, namespace, "restart-both")
    labels = created["metadata"]["labels"]
    assert labels["crr.apps.kruise.io/pod-uid"] == before["metadata"]["uid"]
    assert labels["crr.apps.kruise.io/node-name"] == control_plane.node_name
    assert created["spec"]["strategy"]["failurePolicy"] == "Fail"
    contexts = {c["name"]: c["statusContext"] for c in created["spec"]["containers"]}
    assert contexts["nginx"]["containerID"] == ids_before["nginx"]

    done = wait_until("CRR completed", lambda: completed(kube, namespace, "restart-both"))
    status = done["status"]
    assert status.get("message", "") == ""
    assert status["completionTime"]
    assert {(s["name"], s["phase"]) for s in status["containerRecreateStates"]} == {
        ("nginx", "Succeeded"),
        ("sidecar", "Succeeded"),
    }

    after = read_pod(kube, namespace, "web-0")
    for container in after["status"]["containerStatuses"]:
        assert container["restartCount"] == 1
        assert container["containerID"] != ids_before[container["name"]]

    def deleted() -> bool:
        try:
            get_crr(kube, namespace, "restart-both")
        except ApiException as err:
            return bool(err.status == 404)
        return False

    wait_until("kruise to delete the CRR after its TTL", deleted, timeout=30)


def test_with_the_daemon_down_kruise_completes_the_crr_with_its_own_message(
    kube: k8s.ApiClient, namespace: str, make_pod: MakePod, simulator: Simulator
) -> None:
    make_pod("web-0", ["app"])
    simulator.daemon_down = True
    k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, crr("unanswered", "web-0", [{"name": "app"}])
    )
    # kruise-manager gives the daemon one minute to answer
    done = wait_until(
        "the controller to give up",
        lambda: completed(kube, namespace, "unanswered"),
        timeout=90,
        interval=1,
    )
    assert done["status"]["message"] == "daemon has not responded for a long time"
    # and, being completed, it leaves the daemon's watch (kruise drops the active label)
    wait_until(
        "the active label to be removed",
        lambda: (
            "crr.apps.kruise.io/active"
            not in get_crr(kube, namespace, "unanswered")["metadata"].get("labels", {})
        ),
    )
