"""Names and hashes: the generated name of a restart, the deterministic name and label of an
Idempotency-Key, and the hash that tells two request bodies apart."""

from __future__ import annotations

import hashlib
import json
import secrets

from service.core.schemas import RestartRequest

MAX_NAME = 253
KEYED_NAME_PREFIX = "restart"
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet
_SUFFIX_LEN = 5


def generate_name(pod: str, *, suffix: str | None = None) -> str:
    """``<pod>-<5 random>``, trimmed to a valid DNS-1123 subdomain of at most 253 chars."""
    if suffix is None:
        suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LEN))
    prefix = pod[: MAX_NAME - len(suffix) - 1].rstrip("-.")
    return f"{prefix}-{suffix}" if prefix else suffix


def idempotency_label(namespace: str, key: str) -> str:
    """A label value (<= 63 chars) identifying an Idempotency-Key within a namespace."""
    return hashlib.sha256(f"{namespace}\0{key}".encode()).hexdigest()[:40]


def idempotent_name(namespace: str, key: str) -> str:
    """The deterministic name of a keyed restart whose caller gave no name. It depends on the
    key alone (not on the pod), so any two requests with one key, whatever their bodies, on any
    replicas, collide in the apiserver: one creates, the other is answered from it (200, or 422
    for another body)."""
    return generate_name(KEYED_NAME_PREFIX, suffix="k" + idempotency_label(namespace, key)[:16])


def request_hash(request: RestartRequest) -> str:
    """Hash of the request with defaults applied: two bodies meaning the same hash alike."""
    normalized = request.model_dump(mode="json")
    normalized["containers"] = normalized.get("containers") or None
    encoded = json.dumps(normalized, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()
