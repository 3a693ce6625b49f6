"""Mode static: a tokens file maps hashes to identities, and a broken one says why."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service.auth.static_tokens import load_tokens_file
from service.core.identity import Caller


def test_a_tokens_file_maps_hashes_to_identities(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    path = tmp_path / "tokens.yaml"
    path.write_text(f"{digest.upper()}:\n  user: alice\n  groups: [a]\n  namespaces: [ns]\n")
    ((key, caller),) = load_tokens_file(path)
    assert key == hashlib.sha256(b"s3cret").digest()
    assert caller == Caller("alice", ("a",), authenticated=True, namespaces=frozenset({"ns"}))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- a list\n", "expected a mapping"),
        ("abc:\n  user: x\n", "not a sha256 hex"),
        (f"{'a' * 64}:\n  groups: []\n", "needs user"),
        (f"{'a' * 64}:\n  user: x\n  namespaces: ns\n", "namespaces must be a list"),
        (f"{'a' * 64}:\n  user: x\n  admin: true\n", "unknown keys"),
        ("{broken", "cannot read"),
    ],
)
def test_a_broken_tokens_file_says_why(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        load_tokens_file(path)
