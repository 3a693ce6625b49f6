"""What the user types, turned into what the API takes."""

from __future__ import annotations

import pytest
from crr_client import specs
from crr_client.errors import UsageError


def test_references_are_namespace_slash_name() -> None:
    assert specs.ref("demo/web-0") == ("demo", "web-0")
    assert str(specs.ref("demo/web-0.v2")) == "demo/web-0.v2"


@pytest.mark.parametrize("text", ["web-0", "demo/", "/web-0", "demo/a/b", "Demo/web-0", "demo/Web"])
def test_references_refuse_what_is_not_ns_slash_name(text: str) -> None:
    with pytest.raises(UsageError):
        specs.ref(text)


@pytest.mark.parametrize(
    ("text", "kind", "api_version"),
    [
        ("deployment/web", "Deployment", "apps/v1"),
        ("Deployment/web", "Deployment", "apps/v1"),
        ("deploy/web", "Deployment", "apps/v1"),
        ("deployments.apps/web", "Deployment", "apps/v1"),
        ("deployments.v1.apps/web", "Deployment", "apps/v1"),
        ("sts/web", "StatefulSet", "apps/v1"),
        ("statefulset/web", "StatefulSet", "apps/v1"),
        ("ds/web", "DaemonSet", "apps/v1"),
        ("rs/web", "ReplicaSet", "apps/v1"),
        ("cloneset/web", "CloneSet", "apps.kruise.io/v1alpha1"),
        ("clone/web", "CloneSet", "apps.kruise.io/v1alpha1"),
        ("clonesets.apps.kruise.io/web", "CloneSet", "apps.kruise.io/v1alpha1"),
        ("statefulset.apps.kruise.io/web", "StatefulSet", "apps.kruise.io/v1beta1"),
        ("asts/web", "StatefulSet", "apps.kruise.io/v1beta1"),
        ("statefulset.v1alpha1.apps.kruise.io/web", "StatefulSet", "apps.kruise.io/v1alpha1"),
        ("daemonset.apps.kruise.io/web", "DaemonSet", "apps.kruise.io/v1alpha1"),
        ("ads/web", "DaemonSet", "apps.kruise.io/v1alpha1"),
    ],
)
def test_workloads_are_spelled_as_in_kubectl(text: str, kind: str, api_version: str) -> None:
    assert specs.target(text) == specs.Target(kind, "web", api_version)
    assert specs.target(text).as_json() == {"kind": kind, "name": "web", "apiVersion": api_version}


@pytest.mark.parametrize(
    "text",
    [
        "pod/web",
        "cloneset.apps/web",
        "deployment.v2.apps/web",
        "deployment",
        "deployment/",
        "x/y/z",
    ],
)
def test_unknown_workloads_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        specs.target(text)


def test_selectors_take_kubectl_syntax() -> None:
    assert specs.selector("app=shop,tier==web") == {"matchLabels": {"app": "shop", "tier": "web"}}
    assert specs.selector("app=shop, env in (prod, staging),tier!=db,!canary,zone") == {
        "matchLabels": {"app": "shop"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
        ],
    }
    assert specs.selector("env notin (dev)") == {
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]
    }


@pytest.mark.parametrize("text", ["", " ", "app=shop,", "app=a,app=b", "env in (a,)", "a b=c"])
def test_selectors_that_would_surprise_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        specs.selector(text)


def test_max_unavailable_is_a_count_or_a_percentage() -> None:
    assert specs.max_unavailable("2") == 2
    assert specs.max_unavailable("25%") == "25%"
    for bad in ("0", "0%", "101%", "-1", "1.5", "two"):
        with pytest.raises(UsageError):
            specs.max_unavailable(bad)


def test_idempotency_keys_are_printable_ascii_and_fresh_each_time() -> None:
    first, second = specs.idempotency_key(None), specs.idempotency_key(None)
    assert first != second
    assert first.isascii() and first.isprintable()
    assert specs.idempotency_key("ci run 42 / step 3") == "ci run 42 / step 3"
    for bad in ("", "caf\u00e9", "tab\there", "x" * 256):
        with pytest.raises(UsageError):
            specs.idempotency_key(bad)
