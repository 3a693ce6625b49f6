"""The CRR we create: names only, the defaults, optional fields when given."""

from __future__ import annotations

from service.core.crr import build_crr
from service.core.schemas import RestartRequest


def test_the_crr_carries_names_only_and_the_defaults() -> None:
    body = build_crr(
        namespace="ns",
        name="web-0-abcde",
        version="v1beta1",
        request=RestartRequest(pod="web-0", reason="deploy"),
        containers=["app", "sidecar"],
        requested_by="anonymous",
        warnings=["w"],
        body_hash="h",
        idempotency=None,
    )
    assert body["apiVersion"] == "apps.kruise.io/v1beta1"
    assert body["kind"] == "ContainerRecreateRequest"
    assert body["spec"] == {
        "podName": "web-0",
        "containers": [{"name": "app"}, {"name": "sidecar"}],
        "strategy": {
            "failurePolicy": "Fail",
            "orderedRecreate": False,
            "unreadyGracePeriodSeconds": 3,
        },
        "activeDeadlineSeconds": 300,
        "ttlSecondsAfterFinished": 1800,
    }
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "crr-gateway"}
    assert body["metadata"]["annotations"] == {
        "crr-gateway.io/requested-by": "anonymous",
        "crr-gateway.io/request-hash": "h",
        "crr-gateway.io/reason": "deploy",
        "crr-gateway.io/warnings": '["w"]',
    }


def test_optional_strategy_fields_only_when_given() -> None:
    request = RestartRequest(
        pod="web-0", terminationGracePeriodSeconds=0, minStartedSeconds=5, forceRecreate=False
    )
    body = build_crr(
        namespace="ns",
        name="n",
        version="v1alpha1",
        request=request,
        containers=["app"],
        requested_by="a",
        warnings=[],
        body_hash="h",
        idempotency="key",
    )
    strategy = body["spec"]["strategy"]
    assert strategy["terminationGracePeriodSeconds"] == 0
    assert strategy["minStartedSeconds"] == 5
    assert strategy["forceRecreate"] is False
    assert body["metadata"]["labels"]["crr-gateway.io/idempotency-key"] == "key"
    assert "crr-gateway.io/warnings" not in body["metadata"]["annotations"]
