"""A resource's coordinates and the URL paths built from them."""

from __future__ import annotations

import pytest

from service.core.errors import KubeInvalid
from service.kube.port import PDBS, PODS, PUBS, REPLICASETS, ROLLOUTS, Resource


def test_paths_of_core_and_group_resources() -> None:
    assert PODS.path() == "/api/v1/pods"
    assert PODS.path("demo") == "/api/v1/namespaces/demo/pods"
    assert PODS.path("demo", "web-0") == "/api/v1/namespaces/demo/pods/web-0"
    assert REPLICASETS.path("demo") == "/apis/apps/v1/namespaces/demo/replicasets"
    assert PDBS.path(None) == "/apis/policy/v1/poddisruptionbudgets"
    assert PUBS.path("demo", "pub") == (
        "/apis/policy.kruise.io/v1alpha1/namespaces/demo/podunavailablebudgets/pub"
    )
    assert ROLLOUTS.path("demo", "r1") == (
        "/apis/crr-gateway.io/v1alpha1/namespaces/demo/restartrollouts/r1"
    )


def test_qualified_names_read_as_kubectl_writes_them() -> None:
    assert PODS.qualified == "pods"
    assert PDBS.qualified == "poddisruptionbudgets.policy"
    assert ROLLOUTS.qualified == "restartrollouts.crr-gateway.io"
    assert (
        Resource("apps.kruise.io", "v1alpha1", "clonesets").qualified == "clonesets.apps.kruise.io"
    )


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_a_dot_name_never_becomes_the_collection(name: str) -> None:
    with pytest.raises(KubeInvalid):
        ROLLOUTS.path("demo", name)
    with pytest.raises(KubeInvalid):
        PODS.path(name)


def test_segments_are_escaped() -> None:
    assert PODS.path("demo", "a/b?c") == "/api/v1/namespaces/demo/pods/a%2Fb%3Fc"
