"""deploy/ in tests: rendering it with ``kubectl kustomize``, overlays built the way
deploy/README.md documents, and what the apiserver's RBAC lets an identity do."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import yaml

from tests.support.rest import Obj, Rest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
Rule = tuple[str, str, str]
"""(apiGroup, resource, verb): one permission, for comparing rule sets."""


def kustomize(path: Path) -> list[Obj]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def relative_to_deploy(folder: Path, part: str = "") -> str:
    """kustomize takes no absolute paths: reach deploy/ from ``folder`` relatively."""
    return os.path.relpath(DEPLOY / part, folder)


def service_overlay(root: Path, *, service_namespace: str, served: str, suffix: str) -> Path:
    """The service in another namespace, serving ``served`` (deploy/README.md's recipes)."""
    write(
        root / "gateway/kustomization.yaml",
        f"""
        namespace: {service_namespace}
        resources:
          - {relative_to_deploy(root / "gateway", "gateway")}
        """,
    )
    write(
        root / served / "kustomization.yaml",
        f"""
        namespace: {served}
        resources:
          - {relative_to_deploy(root / served, "served-namespace")}
        """,
    )
    write(
        root / "kustomization.yaml",
        f"""
        resources:
          - gateway
          - {served}
        components:
          - {relative_to_deploy(root, "components/service-account-subjects")}
        nameSuffix: "{suffix}"
        configMapGenerator:
          - name: crr-gateway-settings
            namespace: {service_namespace}
            behavior: merge
            literals:
              - CRR_GATEWAY_NAMESPACES={served}
        """,
    )
    return root


def self_rules(api: Rest, namespace: str) -> set[Rule]:
    """What the apiserver's RBAC authorizer lets ``api``'s identity do in ``namespace``."""
    review = api.ok(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {"spec": {"namespace": namespace}},
    )
    assert not review["status"].get("incomplete"), review["status"]
    return {
        (group, resource, verb)
        for rule in review["status"]["resourceRules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
        if not rule.get("resourceNames")
    }
