"""The adapter's generic raw-JSON methods on the real apiserver: create (and dry run), get,
list with a label selector, replace with a resourceVersion precondition, merge patch, delete,
each failure translated once into our errors. Nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.controlplane import ControlPlane
from service.core.errors import KubeAlreadyExists, KubeConflict, KubeInvalid, KubeNotFound
from service.core.objects import KubeObject
from service.kube.adapter import KubeClient
from service.kube.port import PODS, ROLLOUTS, Resource
from tests.support.pods import pod_manifest


@pytest.fixture(scope="module")
def client(control_plane: ControlPlane) -> Iterator[KubeClient]:
    kube = KubeClient(kubeconfig=control_plane.kubeconfig)
    try:
        yield kube
    finally:
        kube.close()


def rollout(name: str, team: str) -> KubeObject:
    return {
        "apiVersion": "crr-gateway.io/v1alpha1",
        "kind": "RestartRollout",
        "metadata": {"name": name, "labels": {"team": team}},
        "spec": {"maxUnavailable": 1, "pods": [{"name": "web-0", "uid": "u0"}]},
    }


def test_a_custom_resource_round_trip(client: KubeClient, namespace: str) -> None:
    assert client.create_object(ROLLOUTS, namespace, rollout("dry", "a"), dry_run=True)
    with pytest.raises(KubeNotFound):
        client.get_object(ROLLOUTS, namespace, "dry")  # a dry run leaves nothing

    created = client.create_object(ROLLOUTS, namespace, rollout("r1", "a"))
    client.create_object(ROLLOUTS, namespace, rollout("r2", "b"))
    with pytest.raises(KubeAlreadyExists):
        client.create_object(ROLLOUTS, namespace, rollout("r1", "a"))
    read = client.get_object(ROLLOUTS, namespace, "r1")
    assert read["metadata"]["uid"] == created["metadata"]["uid"]

    listed = client.list_objects(ROLLOUTS, namespace, label_selector="team=a")
    assert [i["metadata"]["name"] for i in listed.items] == ["r1"]
    assert listed.resource_version
    assert len(client.list_objects(ROLLOUTS, namespace).items) == 2

    paused = {**read, "spec": {**read["spec"], "paused": True}}
    replaced = client.replace_object(ROLLOUTS, namespace, "r1", paused)
    assert replaced["spec"]["paused"] is True
    # the same write again carries the old resourceVersion: refused, nothing changed
    stale = {**paused, "spec": {**paused["spec"], "cancelled": True}}
    with pytest.raises(KubeConflict) as conflict:
        client.replace_object(ROLLOUTS, namespace, "r1", stale)
    assert not isinstance(conflict.value, KubeAlreadyExists)
    assert "cancelled" not in client.get_object(ROLLOUTS, namespace, "r1")["spec"]

    patched = client.patch_object(ROLLOUTS, namespace, "r1", {"spec": {"paused": False}})
    assert patched["spec"]["paused"] is False
    assert patched["spec"]["pods"] == [{"name": "web-0", "uid": "u0"}]  # a merge, not a put

    client.delete_object(ROLLOUTS, namespace, "r1")
    with pytest.raises(KubeNotFound):
        client.get_object(ROLLOUTS, namespace, "r1")
    with pytest.raises(KubeNotFound):
        client.delete_object(ROLLOUTS, namespace, "r1")


def test_core_objects_and_refusals(client: KubeClient, namespace: str) -> None:
    client.create_object(PODS, namespace, pod_manifest("web-0", ["app"]))
    assert client.get_object(PODS, namespace, "web-0")["spec"]["containers"][0]["name"] == "app"
    with pytest.raises(KubeInvalid):  # the apiserver's validation, translated
        client.create_object(PODS, namespace, {"metadata": {"name": "no-containers"}})
    with pytest.raises(KubeNotFound):  # a resource the cluster does not serve
        client.list_objects(Resource("example.test", "v1", "nothings"), namespace)
    with pytest.raises(KubeInvalid):  # "." would address the whole collection
        client.delete_object(PODS, namespace, ".")
