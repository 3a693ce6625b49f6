"""The checked-in openapi.yaml is what the app generates (regenerate with
``python -m service.openapi``), and the contract says what the issue says."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from service.openapi import OPENAPI_FILE, render, spec


def test_openapi_yaml_is_up_to_date() -> None:
    assert OPENAPI_FILE.exists(), "run: python -m service.openapi"
    assert OPENAPI_FILE.read_text() == render(), "stale: run python -m service.openapi"


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_another_process_renders_the_same_file(hash_seed: str) -> None:
    """The file CI checks is what any process renders, whatever its hash seed (set and dict
    orders built from hashed strings would change between processes, never within one)."""
    checked = subprocess.run(
        [sys.executable, "-m", "service.openapi", "--check"],
        cwd=OPENAPI_FILE.parent,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_contract() -> None:
    document: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text())
    paths = document["paths"]
    assert set(paths) == {
        "/v1/namespaces/{namespace}/restarts",
        "/v1/namespaces/{namespace}/restarts/{name}",
        "/v1/namespaces/{namespace}/restarts/{name}/events",
        "/v1/namespaces/{namespace}/rollouts",
        "/v1/namespaces/{namespace}/rollouts/{name}",
        "/v1/namespaces/{namespace}/rollouts/{name}/events",
        "/v1/namespaces/{namespace}/rollouts/{name}/pause",
        "/v1/namespaces/{namespace}/rollouts/{name}/resume",
        "/v1/namespaces/{namespace}/rollouts/{name}/cancel",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    create = paths["/v1/namespaces/{namespace}/restarts"]["post"]
    assert set(create["responses"]) >= {"200", "201", "403", "404", "409", "422", "503"}
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert {p["name"] for p in create["parameters"]} >= {"dryRun", "Idempotency-Key"}
    request = document["components"]["schemas"]["RestartRequest"]
    assert request["additionalProperties"] is False
    assert request["required"] == ["pod"]
    assert request["properties"]["activeDeadlineSeconds"]["default"] == 300
    restart = document["components"]["schemas"]["Restart"]["properties"]
    for field in (
        "name namespace pod podUID node containers strategy activeDeadlineSeconds "
        "ttlSecondsAfterFinished phase finished result containerStates createdAt completedAt "
        "requestedBy reason warnings resourceVersion message"
    ).split():
        assert field in restart, field
    rollout_create = paths["/v1/namespaces/{namespace}/rollouts"]["post"]
    assert set(rollout_create["responses"]) >= {"200", "201", "403", "404", "409", "422"}
    assert {p["name"] for p in rollout_create["parameters"]} >= {"dryRun", "Idempotency-Key"}
    rollout_request = document["components"]["schemas"]["RolloutRequest"]["properties"]
    assert rollout_request["maxUnavailable"]["default"] == 1
    assert rollout_request["pauseOnFailure"]["default"] is True
    assert rollout_request["activeDeadlineSeconds"]["default"] == 300
    rollout = document["components"]["schemas"]["Rollout"]["properties"]
    for field in (
        "name namespace target selector containers maxUnavailable resolvedMaxUnavailable phase "
        "finished pods counts message createdAt completedAt requestedBy reason"
    ).split():
        assert field in rollout, field
    assert "HTTPValidationError" not in document["components"]["schemas"]
    # every restart route takes a bearer token (docs/auth.md) and may answer 401
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
        "scheme": "bearer",
    }
    for path, operations in paths.items():
        for operation in operations.values():
            secured = operation.get("security") == [{"bearer": []}]
            assert secured == path.startswith("/v1/"), path
            if secured:
                assert "401" in operation["responses"], path
    assert "429" in create["responses"]
    assert spec()["info"]["title"] == "crr-gateway"
