"""Names and hashes: generated names, Idempotency-Key names, the request hash."""

from __future__ import annotations

import re

from service.core.naming import generate_name, idempotent_name, request_hash
from service.core.schemas import DNS1123_SUBDOMAIN, RestartRequest


def test_generated_names_are_valid_and_short_enough() -> None:
    name = generate_name("web-0")
    assert re.fullmatch(r"web-0-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    long = generate_name("a" * 250 + ".b")
    assert len(long) <= 253
    assert re.match(DNS1123_SUBDOMAIN, long)
    trimmed = generate_name("x" * 246 + "-.y", suffix="abcde")
    assert trimmed == "x" * 246 + "-abcde"


def test_idempotent_names_depend_on_namespace_and_key() -> None:
    assert idempotent_name("ns", "k") == idempotent_name("ns", "k")
    assert idempotent_name("ns", "k") != idempotent_name("ns", "k2")
    assert idempotent_name("ns", "k") != idempotent_name("other", "k")
    assert re.match(DNS1123_SUBDOMAIN, idempotent_name("ns", "k"))


def test_request_hash_ignores_spelled_out_defaults() -> None:
    plain = RestartRequest(pod="web-0")
    spelled = RestartRequest(pod="web-0", failurePolicy="Fail", containers=None)
    assert request_hash(plain) == request_hash(spelled)
    assert request_hash(plain) != request_hash(RestartRequest(pod="web-0", reason="x"))
