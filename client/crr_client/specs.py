"""What the user typed, turned into what the API takes: ``NS/NAME`` references, workload
targets in kubectl's ``TYPE[.VERSION][.GROUP]/NAME`` spelling, label selectors, the
unavailability budget and Idempotency-Keys. Pure functions; errors are ``UsageError``."""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple, Union

from crr_client.errors import UsageError

KRUISE_GROUP = "apps.kruise.io"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_VERSION = re.compile(r"v[0-9]+((alpha|beta)[0-9]+)?")
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")

# kubectl's names for the core workloads: singular, plural and short name.
_CORE_KINDS = {
    "deployment": "Deployment",
    "deployments": "Deployment",
    "deploy": "Deployment",
    "statefulset": "StatefulSet",
    "statefulsets": "StatefulSet",
    "sts": "StatefulSet",
    "daemonset": "DaemonSet",
    "daemonsets": "DaemonSet",
    "ds": "DaemonSet",
    "replicaset": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "rs": "ReplicaSet",
}
# OpenKruise's workloads under their group, with the short names its CRDs declare.
_KRUISE_KINDS = {
    "cloneset": "CloneSet",
    "clonesets": "CloneSet",
    "clone": "CloneSet",
    "statefulset": "StatefulSet",
    "statefulsets": "StatefulSet",
    "asts": "StatefulSet",
    "daemonset": "DaemonSet",
    "daemonsets": "DaemonSet",
    "daemon": "DaemonSet",
    "ads": "DaemonSet",
}
# Names that need no group because no core workload has them. "sts" and "statefulset" stay
# the core StatefulSet, as in kubectl; the Advanced one is "asts" or "statefulset.apps.kruise.io".
_KRUISE_ONLY = {name for name in _KRUISE_KINDS if name not in _CORE_KINDS}
# The version each kruise kind is addressed with unless the user names one (the storage
# version of kruise v1.9: Advanced StatefulSet was promoted to v1beta1, the others are v1alpha1).
_KRUISE_VERSIONS = {"CloneSet": "v1alpha1", "StatefulSet": "v1beta1", "DaemonSet": "v1alpha1"}

KIND_HELP = """\
KIND/NAME is spelled as in kubectl: TYPE[.VERSION][.GROUP]/NAME.
  deployment/web, deploy/web, statefulset/db, sts/db, daemonset/agent, ds/agent, replicaset/web-5d8f
                                         apps/v1
  cloneset/shop, clone/shop              apps.kruise.io/v1alpha1 CloneSet
  statefulset.apps.kruise.io/db, asts/db apps.kruise.io/v1beta1 StatefulSet (Advanced)
  daemonset.apps.kruise.io/agent, ads/agent
                                         apps.kruise.io/v1alpha1 DaemonSet (Advanced)
  statefulset.v1alpha1.apps.kruise.io/db another served version, named explicitly"""


class Ref(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Target(NamedTuple):
    kind: str
    name: str
    api_version: str

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "apiVersion": self.api_version}


MaxUnavailable = Union[int, str]


def namespace(text: str) -> str:
    if len(text) > 63 or not _DNS_LABEL.fullmatch(text):
        raise UsageError(f"{text!r} is not a namespace name (a DNS label: a-z, 0-9 and '-')")
    return text


def ref(text: str, what: str = "NAME") -> Ref:
    """``NS/NAME``, as the API addresses a restart, a rollout or a pod."""
    ns, slash, name = text.partition("/")
    if not slash or not ns or not name or "/" in name:
        raise UsageError(f"expected NS/{what}, got {text!r}")
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise UsageError(f"{name!r} is not a Kubernetes object name (a-z, 0-9, '-' and '.')")
    return Ref(namespace(ns), name)


def target(text: str) -> Target:
    """A workload in kubectl's ``TYPE[.VERSION][.GROUP]/NAME`` spelling (see ``KIND_HELP``)."""
    resource, slash, name = text.partition("/")
    if not slash or not resource or not name or "/" in name:
        raise UsageError(f"expected KIND/NAME (for example deployment/web), got {text!r}")
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise UsageError(f"{name!r} is not a Kubernetes object name (a-z, 0-9, '-' and '.')")
    type_, _, qualifier = resource.lower().partition(".")
    version, group = _version_and_group(qualifier)
    if group in ("", "apps") and type_ in _CORE_KINDS:
        if version not in ("", "v1"):
            raise UsageError(f"apps/{version} is not served; apps/v1 is")
        return Target(_CORE_KINDS[type_], name, "apps/v1")
    if (group == KRUISE_GROUP and type_ in _KRUISE_KINDS) or (
        group == "" and type_ in _KRUISE_ONLY
    ):
        kind = _KRUISE_KINDS[type_]
        return Target(kind, name, f"{KRUISE_GROUP}/{version or _KRUISE_VERSIONS[kind]}")
    raise UsageError(
        f"unknown workload type {resource!r}: use Deployment, StatefulSet, DaemonSet, "
        "ReplicaSet, CloneSet, or an Advanced StatefulSet/DaemonSet as "
        "statefulset.apps.kruise.io/NAME or daemonset.apps.kruise.io/NAME"
    )


def _version_and_group(qualifier: str) -> tuple[str, str]:
    """``''``, ``GROUP`` or ``VERSION.GROUP`` (kubectl's ``deployments.v1.apps``)."""
    first, dot, rest = qualifier.partition(".")
    if dot and _VERSION.fullmatch(first):
        return first, rest
    return "", qualifier


def selector(text: str) -> dict[str, Any]:
    """kubectl's label selector: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
    ``k notin (a,b)``, comma-separated and ANDed; as a Kubernetes LabelSelector."""
    labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for requirement in _split_top_level(text):
        item = requirement.strip()
        if not item:
            raise UsageError(f"empty requirement in selector {text!r}")
        set_based = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", item)
        if set_based:
            key, op, values = set_based.groups()
            listed = [v.strip() for v in values.split(",")]
            if not all(listed):
                raise UsageError(f"empty value in {item!r}")
            operator = "In" if op == "in" else "NotIn"
            expressions.append({"key": _label_key(key), "operator": operator, "values": listed})
        elif item.startswith("!"):
            expressions.append({"key": _label_key(item[1:].strip()), "operator": "DoesNotExist"})
        elif "!=" in item:
            key, _, value = item.partition("!=")
            expressions.append(
                {"key": _label_key(key.strip()), "operator": "NotIn", "values": [value.strip()]}
            )
        elif "=" in item:
            key, _, value = item.replace("==", "=", 1).partition("=")
            key = _label_key(key.strip())
            if key in labels and labels[key] != value.strip():
                raise UsageError(f"label {key!r} is required to equal two values in {text!r}")
            labels[key] = value.strip()
        else:
            expressions.append({"key": _label_key(item), "operator": "Exists"})
    if not labels and not expressions:
        raise UsageError("an empty selector would select every pod of the namespace")
    result: dict[str, Any] = {}
    if labels:
        result["matchLabels"] = labels
    if expressions:
        result["matchExpressions"] = expressions
    return result


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses: ``a in (x,y),b`` is two requirements."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _label_key(key: str) -> str:
    if not key or re.search(r"[\s=!(),]", key):
        raise UsageError(f"{key!r} is not a label key")
    return key


def max_unavailable(text: str) -> MaxUnavailable:
    """``N`` (pods, at least 1) or ``P%`` (of the selected pods, 1 to 100)."""
    if re.fullmatch(r"[0-9]+", text):
        if int(text) < 1:
            raise UsageError("--max-unavailable must be at least 1")
        return int(text)
    if re.fullmatch(r"[0-9]+%", text):
        if not 1 <= int(text[:-1]) <= 100:
            raise UsageError("--max-unavailable as a percentage must be 1% to 100%")
        return text
    raise UsageError(f"--max-unavailable takes N or P%, not {text!r}")


def idempotency_key(given: str | None) -> str:
    """The key given (printable ASCII, as the API requires) or a fresh random one."""
    if given is None:
        return "crr-" + os.urandom(16).hex()
    if not _IDEMPOTENCY_KEY.fullmatch(given):
        raise UsageError("--idempotency-key takes 1 to 255 printable ASCII characters")
    return given
