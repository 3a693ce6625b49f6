"""deploy/ serves HTTPS from a mounted Secret, and components/plain-http turns it into plain
HTTP for a mesh, as deploy/README.md says. Rendered with ``kubectl kustomize``; the environment
each gives the service is checked by the service's own ``Settings``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from service.config import Settings
from tests.support.deploy import DEPLOY, kustomize, relative_to_deploy, write
from tests.support.rest import Obj

TLS_CONNECTION_KIB = 280  # measured: docs/edge.md, "Sizing the cap"


def one(docs: list[Obj], kind: str) -> Obj:
    (doc,) = (
        doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == "crr-gateway"
    )
    return doc


def container_of(docs: list[Obj]) -> Any:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def environment(docs: list[Obj]) -> dict[str, str]:
    container = container_of(docs)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        (config_map,) = (
            doc
            for doc in docs
            if doc["kind"] == "ConfigMap"
            and doc["metadata"]["name"] == source["configMapRef"]["name"]
        )
        env.update(config_map["data"])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What the service makes of this environment (it refuses a half-given TLS pair)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_base_serves_https_from_the_whole_secret_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = kustomize(DEPLOY)
    container = container_of(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    settings = settings_from(environment(docs), monkeypatch)
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    assert settings.port == 8443

    (volume,) = (v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"] == {"secretName": "crr-gateway-tls", "defaultMode": 0o440}
    (mount,) = (m for m in container["volumeMounts"] if m["name"] == volume["name"])
    # a directory mount (a subPath mount is never updated: no rotation would reach the service)
    assert "subPath" not in mount and mount["readOnly"] is True
    for path in (settings.tls_cert_file, settings.tls_key_file):
        assert PurePosixPath(path).parent == PurePosixPath(mount["mountPath"])
    assert {settings.tls_cert_file.name, settings.tls_key_file.name} == {"tls.crt", "tls.key"}
    # readable by the service's group only: the pod's fsGroup, which the service runs in
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]

    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    # the cap fits the memory limit at ~280 KiB per TLS connection (docs/edge.md), with room
    assert container["resources"]["limits"]["memory"] == "256Mi"
    assert settings.max_connections * TLS_CONNECTION_KIB < 256 * 1024 * 0.75
    (port,) = one(docs, "Service")["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["appProtocol"]) == (443, "https", "https")


def test_the_plain_http_component_serves_http_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "kustomization.yaml",
        f"""
        resources:
          - {relative_to_deploy(tmp_path)}
        components:
          - {relative_to_deploy(tmp_path, "components/plain-http")}
        """,
    )
    docs = kustomize(tmp_path)
    container = container_of(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    env = environment(docs)
    assert not any(name.startswith("CRR_GATEWAY_TLS_") for name in env)
    settings = settings_from(env, monkeypatch)
    assert settings.tls_cert_file is None and settings.port == 8080

    assert not any("secret" in volume for volume in pod["volumes"])
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTP"
        assert container[probe]["httpGet"]["port"] == "http"
    (port,) = one(docs, "Service")["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["appProtocol"]) == (80, "http", "http")
    (ingress,) = one(docs, "NetworkPolicy")["spec"]["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert ingress["from"] == [{"namespaceSelector": {}}]  # the rest of the rule untouched
