"""Raw Kubernetes objects as decoded JSON, and lenient reads of their parts: an object from
the apiserver is read defensively (a missing or mistyped section reads as empty)."""

from __future__ import annotations

from typing import Any

KubeObject = dict[str, Any]
"""A raw Kubernetes object as decoded from JSON (pods, CRRs, Status...)."""


def metadata(obj: KubeObject) -> dict[str, Any]:
    return section(obj, "metadata")


def section(obj: KubeObject, key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def dict_items(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The mappings in the list at ``key`` (anything else is skipped)."""
    value = obj.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def uid(obj: KubeObject) -> str | None:
    value = metadata(obj).get("uid")
    return value if isinstance(value, str) else None


def controller_uid(obj: KubeObject) -> str | None:
    """The uid of the object's controller ownerReference (a ReplicaSet's Deployment), if any."""
    for owner in dict_items(metadata(obj), "ownerReferences"):
        if owner.get("controller"):
            return str(owner.get("uid", ""))
    return None
