"""deploy/ is least privilege, proven on the real control plane.

The manifests are rendered with ``kubectl kustomize`` and checked as written; then an overlay built
the way deploy/README.md documents (the service in its own fresh namespace, one fresh served
namespace, a name suffix so the cluster-scoped objects are this module's own) is applied
server-side, a token is minted for the deployed ServiceAccount with TokenRequest, and the
apiserver itself is asked what that identity may do. Nothing is mocked.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.controlplane import ControlPlane
from tests.support.deploy import (
    DEPLOY,
    Rule,
    kustomize,
    relative_to_deploy,
    self_rules,
    service_overlay,
    write,
)
from tests.support.pods import MakePod, pod_manifest
from tests.support.rest import Obj, Rest
from tests.support.waiting import wait_until

GROUP = "apps.kruise.io"
VERSION = "v1alpha1"
PLURAL = "containerrecreaterequests"
CRR_VERBS = ("create", "get", "list", "watch", "delete")
WORKLOADS = ("deployments", "statefulsets", "daemonsets", "replicasets")
KRUISE_WORKLOADS = ("clonesets", "statefulsets", "daemonsets")
ROLLOUT_VERBS = ("create", "get", "list", "watch", "update", "patch", "delete")
COMMON_LABELS = {
    "app.kubernetes.io/name": "crr-gateway",
    "app.kubernetes.io/part-of": "crr-gateway",
}


# --------------------------------------------------------------------------------- rendering


def find(docs: list[Obj], kind: str, name: str, namespace: str | None = None) -> Obj:
    matches = [
        doc
        for doc in docs
        if doc["kind"] == kind
        and doc["metadata"]["name"] == name
        and doc["metadata"].get("namespace") == namespace
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
    return matches[0]


def rules_of(role: Obj) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def served_namespaces(docs: list[Obj]) -> set[str]:
    """Namespaces whose crr-gateway Role is bound to the service's ServiceAccount."""
    account = next(doc for doc in docs if doc["kind"] == "ServiceAccount")
    subject = {
        "kind": "ServiceAccount",
        "name": account["metadata"]["name"],
        "namespace": account["metadata"]["namespace"],
    }
    return {
        doc["metadata"]["namespace"]
        for doc in docs
        if doc["kind"] == "RoleBinding"
        and doc["roleRef"]["kind"] == "Role"
        and subject in doc["subjects"]
    }


def settings_of(docs: list[Obj]) -> dict[str, str]:
    """The environment the Deployment gives the service: its env plus its ConfigMaps."""
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    namespace = deployment["metadata"]["namespace"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = find(docs, "ConfigMap", source["configMapRef"]["name"], namespace)
        env.update(config_map["data"])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


# --------------------------------------------------------------------------------- the base


@pytest.fixture(scope="module")
def base() -> list[Obj]:
    return kustomize(DEPLOY)


def test_base_serves_demo_and_its_settings_list_exactly_that(base: list[Obj]) -> None:
    assert served_namespaces(base) == {"demo"}
    settings = settings_of(base)
    assert settings["CRR_GATEWAY_NAMESPACES"] == "demo"
    assert settings["CRR_GATEWAY_AUTH_MODE"] == "kubernetes"
    assert settings["CRR_GATEWAY_AUTH_AUDIENCES"] == "crr-gateway"
    assert settings["CRR_GATEWAY_HOST"] == "0.0.0.0"
    assert settings["CRR_GATEWAY_PORT"] == "8443"  # HTTPS: test_deploy_https.py
    assert "CRR_GATEWAY_KUBECONFIG" not in settings  # in-cluster configuration
    # the served namespace holds workloads: the base neither creates nor owns it
    assert {doc["metadata"]["name"] for doc in base if doc["kind"] == "Namespace"} == {
        "crr-gateway"
    }


def test_every_object_carries_the_common_labels(base: list[Obj]) -> None:
    for doc in base:
        labels = doc["metadata"].get("labels", {})
        assert COMMON_LABELS.items() <= labels.items(), (doc["kind"], doc["metadata"]["name"])
    template = find(base, "Deployment", "crr-gateway", "crr-gateway")["spec"]["template"]
    assert COMMON_LABELS.items() <= template["metadata"]["labels"].items()


def test_no_rule_has_a_wildcard_or_touches_secrets(base: list[Obj]) -> None:
    roles = [doc for doc in base if doc["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            for key in ("apiGroups", "resources", "verbs"):
                assert not any("*" in value for value in rule.get(key, [])), (role, rule)
            assert not any(r.split("/")[0] == "secrets" for r in rule["resources"]), role
    ours = {role["metadata"]["name"] for role in roles}
    for binding in (doc for doc in base if doc["kind"].endswith("RoleBinding")):
        assert binding["roleRef"]["name"] in ours  # no built-in role (admin, edit, view...)
    assert "secrets" not in yaml.safe_dump_all(base).lower()


def test_rbac_grants_exactly_what_the_service_and_its_callers_need(base: list[Obj]) -> None:
    review = find(base, "ClusterRole", "crr-gateway")
    assert rules_of(review) == {
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
    }
    served = find(base, "Role", "crr-gateway", "demo")
    assert rules_of(served) == {
        *(("", "pods", verb) for verb in ("get", "list", "watch")),
        *((GROUP, PLURAL, verb) for verb in CRR_VERBS),
        # rollouts: their targets, a Deployment's ReplicaSets, the budgets, the rollouts
        *(("apps", kind, "get") for kind in WORKLOADS),
        ("apps", "replicasets", "list"),
        *((GROUP, kind, "get") for kind in KRUISE_WORKLOADS),
        ("policy", "poddisruptionbudgets", "list"),
        ("policy", "poddisruptionbudgets", "watch"),
        ("policy.kruise.io", "podunavailablebudgets", "list"),
        ("policy.kruise.io", "podunavailablebudgets", "watch"),
        *(("crr-gateway.io", "restartrollouts", verb) for verb in ROLLOUT_VERBS),
        ("", "events", "create"),
        ("events.k8s.io", "events", "create"),
    }
    caller = find(base, "ClusterRole", "crr-gateway-caller")
    assert rules_of(caller) == {(GROUP, PLURAL, verb) for verb in CRR_VERBS}
    account = {"kind": "ServiceAccount", "name": "crr-gateway", "namespace": "crr-gateway"}
    assert find(base, "ClusterRoleBinding", "crr-gateway")["subjects"] == [account]
    assert find(base, "RoleBinding", "crr-gateway", "demo")["subjects"] == [account]
    # callers bind the caller role themselves, namespace by namespace
    bound = {doc["roleRef"]["name"] for doc in base if doc["kind"].endswith("RoleBinding")}
    assert "crr-gateway-caller" not in bound


def test_deployment_runs_hardened(base: list[Obj]) -> None:
    pod = find(base, "Deployment", "crr-gateway", "crr-gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    def effective(key: str) -> Any:
        return container.get("securityContext", {}).get(key, pod["securityContext"].get(key))

    assert effective("runAsNonRoot") is True
    assert effective("runAsUser") == 10001
    assert effective("readOnlyRootFilesystem") is True
    assert effective("allowPrivilegeEscalation") is False
    assert effective("privileged") in (False, None)
    assert effective("capabilities") == {"drop": ["ALL"]}
    assert effective("seccompProfile") == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert pod["serviceAccountName"] == "crr-gateway"
    assert pod["automountServiceAccountToken"] is True
    account = find(base, "ServiceAccount", "crr-gateway", "crr-gateway")
    assert account["automountServiceAccountToken"] is False  # only this pod opts in
    # a Service named crr-gateway would inject CRR_GATEWAY_PORT=tcp://... into the settings
    assert pod["enableServiceLinks"] is False
    (tmp,) = (m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    (volume,) = (v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume
    assert container["image"] == "crr-gateway:latest"


def test_deployment_is_replicated_spread_probed_and_sized(base: list[Obj]) -> None:
    deployment = find(base, "Deployment", "crr-gateway", "crr-gateway")
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    https = {"scheme": "HTTPS", "port": "https"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", **https}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", **https}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", **https}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == selector
    (preferred,) = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    )

    service = find(base, "Service", "crr-gateway", "crr-gateway")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [
        {
            "name": "https",
            "port": 443,
            "targetPort": "https",
            "protocol": "TCP",
            "appProtocol": "https",
        }
    ]
    budget = find(base, "PodDisruptionBudget", "crr-gateway", "crr-gateway")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == selector


def test_network_policy_admits_only_http_and_lets_out_only_apiserver_and_dns(
    base: list[Obj],
) -> None:
    policy = find(base, "NetworkPolicy", "crr-gateway", "crr-gateway")["spec"]
    selector = find(base, "Deployment", "crr-gateway", "crr-gateway")["spec"]["selector"]
    assert policy["podSelector"] == selector
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert ingress["from"] == [{"namespaceSelector": {}}]  # any namespace, by default
    egress = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {("TCP", 443), ("TCP", 6443), ("UDP", 53), ("TCP", 53)}


def test_an_overlay_adds_a_served_namespace_as_the_readme_says(tmp_path: Path) -> None:
    write(
        tmp_path / "team-a/kustomization.yaml",
        f"""
        namespace: team-a
        resources:
          - {relative_to_deploy(tmp_path / "team-a", "served-namespace")}
        """,
    )
    write(
        tmp_path / "kustomization.yaml",
        f"""
        resources:
          - {relative_to_deploy(tmp_path)}
          - team-a
        configMapGenerator:
          - name: crr-gateway-settings
            namespace: crr-gateway
            behavior: merge
            literals:
              - CRR_GATEWAY_NAMESPACES=demo,team-a
        images:
          - name: crr-gateway
            newName: registry.example.com/platform/crr-gateway
            newTag: 0.1.0
        """,
    )
    docs = kustomize(tmp_path)
    assert served_namespaces(docs) == {"demo", "team-a"}
    assert settings_of(docs)["CRR_GATEWAY_NAMESPACES"] == "demo,team-a"
    assert rules_of(find(docs, "Role", "crr-gateway", "team-a")) == rules_of(
        find(docs, "Role", "crr-gateway", "demo")
    )
    deployment = find(docs, "Deployment", "crr-gateway", "crr-gateway")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/platform/crr-gateway:0.1.0"


# --------------------------------------------------------------------------------- applied


def crrs_path(namespace: str | None, name: str = "") -> str:
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{scope}/{PLURAL}" + (f"/{name}" if name else "")


def crr_body(name: str, pod: str, containers: list[str]) -> Obj:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ContainerRecreateRequest",
        "metadata": {"name": name},
        "spec": {"podName": pod, "containers": [{"name": c} for c in containers]},
    }


def create_service_account(admin: Rest, namespace: str, name: str) -> None:
    admin.ok(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
    )


def mint_token(admin: Rest, namespace: str, account: str) -> str:
    """A TokenRequest token for the account, for the apiserver's own audience."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    token: str = admin.ok("POST", path, request)["status"]["token"]
    return token


def review_token(api: Rest, token: str) -> Obj:
    review = api.ok(
        "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": token}}
    )
    status: Obj = review["status"]
    return status


def may(api: Rest, user: Obj, namespace: str, verb: str) -> bool:
    """The service's own question, asked as the service: may ``user`` (a TokenReview's
    ``status.user``) do ``verb`` on CRRs in ``namespace``?"""
    review = api.ok(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "spec": {
                "user": user["username"],
                "uid": user.get("uid", ""),
                "groups": user.get("groups", []),
                "extra": user.get("extra", {}),
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": GROUP,
                    "resource": PLURAL,
                },
            }
        },
    )
    allowed: bool = review["status"]["allowed"]
    return allowed


@dataclass(frozen=True)
class Deployed:
    """One instance of deploy/ applied to the control plane, and where it lives."""

    docs: list[Obj]
    apply_warnings: list[str]
    service_namespace: str
    served: str
    unserved: str
    suffix: str

    @property
    def account(self) -> str:
        return f"crr-gateway{self.suffix}"

    @property
    def caller_role(self) -> str:
        return f"crr-gateway-caller{self.suffix}"


@pytest.fixture(scope="module")
def deployed(
    control_plane: ControlPlane, admin: Rest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    tag = secrets.token_hex(3)
    served, unserved = f"served-{tag}", f"unserved-{tag}"
    for name in (served, unserved):
        admin.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    # a pod the service account must not even see: a 403, not a 404
    admin.ok("POST", f"/api/v1/namespaces/{unserved}/pods", pod_manifest("web-0", ["app"]))

    overlay = service_overlay(
        tmp_path_factory.mktemp("overlay"),
        service_namespace=f"crr-gateway-{tag}",
        served=served,
        suffix=f"-{tag}",
    )
    docs = kustomize(overlay)
    kubectl = ["kubectl", "--kubeconfig", str(control_plane.kubeconfig)]
    applied = subprocess.run(
        [*kubectl, "apply", "--server-side", "--field-manager=test-deploy", "-f", "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    warnings = [line for line in applied.stderr.splitlines() if line.strip()]
    yield Deployed(docs, warnings, f"crr-gateway-{tag}", served, unserved, f"-{tag}")

    # the namespaces stay (nothing finalizes them here); the cluster-wide objects go
    cluster_scoped = [doc for doc in docs if doc["kind"].startswith("Cluster")]
    control_plane.kubectl(
        "delete", "--ignore-not-found", "-f", "-", input=yaml.safe_dump_all(cluster_scoped)
    )


@pytest.fixture(scope="module")
def gateway(control_plane: ControlPlane, admin: Rest, deployed: Deployed) -> Iterator[Rest]:
    """The deployed ServiceAccount, with a TokenRequest token, once its bindings are in force."""
    api = Rest(control_plane, mint_token(admin, deployed.service_namespace, deployed.account))

    def bound() -> bool:
        rules = self_rules(api, deployed.served)
        return {("", "pods", "get"), ("authentication.k8s.io", "tokenreviews", "create")} <= rules

    wait_until("the service account's bindings to take effect", bound, timeout=15)
    try:
        yield api
    finally:
        api.close()


def test_apply_is_clean_and_creates_the_service_namespace(admin: Rest, deployed: Deployed) -> None:
    # no "would violate PodSecurity", no deprecated API: kubectl said nothing on stderr
    assert deployed.apply_warnings == []
    assert served_namespaces(deployed.docs) == {deployed.served}
    assert settings_of(deployed.docs)["CRR_GATEWAY_NAMESPACES"] == deployed.served
    namespace = admin.ok("GET", f"/api/v1/namespaces/{deployed.service_namespace}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = admin.ok(
        "GET",
        f"/apis/apps/v1/namespaces/{deployed.service_namespace}/deployments/{deployed.account}",
    )
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == deployed.account


def test_pod_template_passes_the_restricted_pod_security_standard(
    admin: Rest, deployed: Deployed
) -> None:
    """Pod Security admission, enforcing "restricted" in the service's namespace, admits a pod
    built from the Deployment's template, and refuses it with any one hardening undone."""
    deployment = find(deployed.docs, "Deployment", deployed.account, deployed.service_namespace)
    template = deployment["spec"]["template"]
    path = f"/api/v1/namespaces/{deployed.service_namespace}/pods"

    def create(spec: Obj) -> tuple[int, Obj]:
        pod = {"metadata": {"name": "template", "labels": template["metadata"]["labels"]}}
        return admin.call("POST", path, {**pod, "spec": spec}, dryRun="All")

    status, answer = create(template["spec"])
    assert status == 201, answer.get("message")

    undo: list[tuple[tuple[str, ...], object]] = [
        (("securityContext", "runAsNonRoot"), False),
        (("securityContext", "seccompProfile"), {"type": "Unconfined"}),
        (("containers", "0", "securityContext", "allowPrivilegeEscalation"), True),
        (("containers", "0", "securityContext", "capabilities"), {"drop": ["NET_RAW"]}),
    ]
    for keys, value in undo:
        spec: Obj = json.loads(json.dumps(template["spec"]))
        target: Any = spec
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value
        status, answer = create(spec)
        assert status == 403, keys
        assert "violates PodSecurity" in answer["message"], keys


def test_service_account_restarts_containers_in_a_served_namespace(
    gateway: Rest, deployed: Deployed, make_pod: MakePod
) -> None:
    ns = deployed.served
    pod = make_pod("web-0", ["nginx", "sidecar"], namespace=ns)

    read = gateway.ok("GET", f"/api/v1/namespaces/{ns}/pods/web-0")
    assert read["metadata"]["uid"] == pod["metadata"]["uid"]

    before = gateway.ok("GET", crrs_path(ns))
    created = gateway.ok("POST", crrs_path(ns), crr_body("restart-nginx", "web-0", ["nginx"]))
    # kruise's real webhook admitted it and filled in what it owns
    assert created["metadata"]["labels"]["crr.apps.kruise.io/pod-uid"] == pod["metadata"]["uid"]

    got = gateway.ok("GET", crrs_path(ns, "restart-nginx"))
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = gateway.ok("GET", crrs_path(ns))
    assert "restart-nginx" in {item["metadata"]["name"] for item in listed["items"]}

    watch = gateway.open(
        "GET",
        crrs_path(ns),
        stream=True,
        watch="true",
        resourceVersion=before["metadata"]["resourceVersion"],
        timeoutSeconds="10",
    )
    try:
        assert watch.status == 200
        first = json.loads(next(iter(watch)))
    finally:
        watch.close()
        watch.release_conn()
    assert first["type"] == "ADDED"
    assert first["object"]["metadata"]["name"] == "restart-nginx"

    gateway.ok("DELETE", crrs_path(ns, "restart-nginx"))


def test_service_account_records_events_in_a_served_namespace(
    gateway: Rest, deployed: Deployed
) -> None:
    ns = deployed.served
    regarding = {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": "web-0"}
    gateway.ok(
        "POST",
        f"/api/v1/namespaces/{ns}/events",
        {
            "metadata": {"name": f"web-0.{secrets.token_hex(4)}"},
            "involvedObject": regarding,
            "reason": "RestartRequested",
            "message": "restart of nginx requested",
            "type": "Normal",
            "source": {"component": "crr-gateway"},
        },
    )
    gateway.ok(
        "POST",
        f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
        {
            "metadata": {"name": f"web-0.{secrets.token_hex(4)}"},
            "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "crr-gateway",
            "reportingInstance": "crr-gateway-0",
            "action": "Restart",
            "reason": "RestartRequested",
            "note": "restart of nginx requested",
            "type": "Normal",
            "regarding": regarding,
        },
    )


def test_the_apiserver_grants_the_service_account_exactly_its_roles(
    control_plane: ControlPlane, admin: Rest, gateway: Rest, deployed: Deployed
) -> None:
    # what any authenticated identity may do anyway (self reviews, discovery...)
    create_service_account(admin, deployed.unserved, "bystander")
    bystander = Rest(control_plane, mint_token(admin, deployed.unserved, "bystander"))
    try:
        everyone = self_rules(bystander, deployed.served)
    finally:
        bystander.close()

    review = rules_of(find(deployed.docs, "ClusterRole", deployed.account))
    served = rules_of(find(deployed.docs, "Role", deployed.account, deployed.served))
    assert self_rules(gateway, deployed.unserved) - everyone == review
    assert self_rules(gateway, deployed.service_namespace) - everyone == review
    assert self_rules(gateway, deployed.served) - everyone == review | served


@dataclass(frozen=True)
class Forbidden:
    what: str
    method: str
    path: Callable[[Deployed], str]
    body: Obj | None = None
    content_type: str = "application/json"


FORBIDDEN = [
    Forbidden(
        "get a pod in an unserved namespace",
        "GET",
        lambda d: f"/api/v1/namespaces/{d.unserved}/pods/web-0",
    ),
    Forbidden(
        "create a CRR in an unserved namespace",
        "POST",
        lambda d: crrs_path(d.unserved),
        crr_body("nope", "web-0", ["app"]),
    ),
    Forbidden("list CRRs in an unserved namespace", "GET", lambda d: crrs_path(d.unserved)),
    Forbidden(
        "delete a CRR in an unserved namespace",
        "DELETE",
        lambda d: crrs_path(d.unserved, "nope"),
    ),
    Forbidden("list CRRs in every namespace", "GET", lambda d: crrs_path(None)),
    Forbidden("watch CRRs in every namespace", "GET", lambda d: crrs_path(None) + "?watch=true"),
    Forbidden(
        "patch a CRR in a served namespace",
        "PATCH",
        lambda d: crrs_path(d.served, "nope"),
        {"metadata": {"labels": {"patched": "yes"}}},
        "application/merge-patch+json",
    ),
    Forbidden("list pods in every namespace", "GET", lambda d: "/api/v1/pods"),
    Forbidden(
        "list deployments in a served namespace",
        "GET",
        lambda d: f"/apis/apps/v1/namespaces/{d.served}/deployments",
    ),
    Forbidden(
        "patch a CloneSet in a served namespace",
        "PATCH",
        lambda d: f"/apis/{GROUP}/{VERSION}/namespaces/{d.served}/clonesets/web",
        {"spec": {"replicas": 0}},
        "application/merge-patch+json",
    ),
    Forbidden(
        "create a PodDisruptionBudget in a served namespace",
        "POST",
        lambda d: f"/apis/policy/v1/namespaces/{d.served}/poddisruptionbudgets",
        {"metadata": {"name": "nope"}, "spec": {"maxUnavailable": 0}},
    ),
    Forbidden(
        "list RestartRollouts in an unserved namespace",
        "GET",
        lambda d: f"/apis/crr-gateway.io/v1alpha1/namespaces/{d.unserved}/restartrollouts",
    ),
    Forbidden(
        "delete a pod in a served namespace",
        "DELETE",
        lambda d: f"/api/v1/namespaces/{d.served}/pods/web-0",
    ),
    Forbidden(
        "exec into a pod in a served namespace",
        "POST",
        lambda d: f"/api/v1/namespaces/{d.served}/pods/web-0/exec?command=sh",
    ),
    Forbidden(
        "read a secret in a served namespace",
        "GET",
        lambda d: f"/api/v1/namespaces/{d.served}/secrets/any",
    ),
    Forbidden(
        "list secrets in its own namespace",
        "GET",
        lambda d: f"/api/v1/namespaces/{d.service_namespace}/secrets",
    ),
    Forbidden("list secrets in every namespace", "GET", lambda d: "/api/v1/secrets"),
    Forbidden(
        "mint a token for another service account",
        "POST",
        lambda d: f"/api/v1/namespaces/{d.service_namespace}/serviceaccounts/default/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    ),
    Forbidden(
        "create an event in an unserved namespace",
        "POST",
        lambda d: f"/api/v1/namespaces/{d.unserved}/events",
        {"metadata": {"name": "nope"}, "reason": "RestartRequested"},
    ),
    Forbidden(
        "bind a role in a served namespace",
        "POST",
        lambda d: f"/apis/rbac.authorization.k8s.io/v1/namespaces/{d.served}/rolebindings",
        {"metadata": {"name": "escalate"}},
    ),
    Forbidden("list namespaces", "GET", lambda d: "/api/v1/namespaces"),
]


@pytest.mark.parametrize("case", FORBIDDEN, ids=[case.what for case in FORBIDDEN])
def test_the_apiserver_forbids_the_service_account_to(
    case: Forbidden, gateway: Rest, deployed: Deployed
) -> None:
    status, answer = gateway.call(
        case.method, case.path(deployed), case.body, content_type=case.content_type
    )
    assert status == 403, answer.get("message")
    assert answer["reason"] == "Forbidden"
    assert (
        f"system:serviceaccount:{deployed.service_namespace}:{deployed.account}"
        in (answer["message"])
    )


def test_service_account_reviews_tokens_and_access(
    admin: Rest, gateway: Rest, deployed: Deployed
) -> None:
    create_service_account(admin, deployed.unserved, "reviewed")
    token = mint_token(admin, deployed.unserved, "reviewed")
    review = review_token(gateway, token)
    assert review["authenticated"] is True
    assert review["user"]["username"] == f"system:serviceaccount:{deployed.unserved}:reviewed"
    assert not review_token(gateway, "not-a-token").get("authenticated")
    # it is bound nowhere
    assert not may(gateway, review["user"], deployed.served, "create")


def test_caller_role_bound_in_one_namespace_authorizes_there_only(
    admin: Rest, gateway: Rest, deployed: Deployed, namespace: str
) -> None:
    """A caller's ServiceAccount bound to crr-gateway-caller with a RoleBinding in namespace A
    passes the service's check (TokenReview, then a SubjectAccessReview per verb, made as the
    service) in A and in no other namespace."""
    allowed_ns, other_ns = namespace, deployed.served
    create_service_account(admin, allowed_ns, "portal")
    admin.ok(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{allowed_ns}/rolebindings",
        {
            "metadata": {"name": "portal-crr-gateway"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": deployed.caller_role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "portal", "namespace": allowed_ns}],
        },
    )
    user = review_token(gateway, mint_token(admin, allowed_ns, "portal"))["user"]

    wait_until(
        "the caller's binding to take effect", lambda: may(gateway, user, allowed_ns, "create")
    )
    assert {verb: may(gateway, user, allowed_ns, verb) for verb in CRR_VERBS} == dict.fromkeys(
        CRR_VERBS, True
    )
    assert {verb: may(gateway, user, other_ns, verb) for verb in CRR_VERBS} == dict.fromkeys(
        CRR_VERBS, False
    )
    for verb in ("update", "patch", "deletecollection"):
        assert not may(gateway, user, allowed_ns, verb), verb
