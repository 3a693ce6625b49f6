"""The lock files (requirements/, ``make lock``) still cover what pyproject.toml asks for, with a
hash for every pin, and the image installs from them: a dependency added to pyproject.toml
without ``make lock`` fails here, not in an image build."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "requirements" / "runtime.txt"
DEV = ROOT / "requirements" / "dev.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of each pin in a lock file."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match[1])
            found[name] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def project() -> dict[str, list[str]]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        "runtime": meta["project"]["dependencies"],
        "dev": meta["project"]["optional-dependencies"]["dev"],
        "build": meta["build-system"]["requires"],
    }


@pytest.mark.parametrize(
    ("lock", "groups"),
    [(RUNTIME, ("runtime", "build")), (DEV, ("runtime", "dev", "build"))],
    ids=["runtime", "dev"],
)
def test_every_requirement_is_locked_in_range_with_hashes(
    lock: Path, groups: tuple[str, ...]
) -> None:
    locked = pins(lock)
    assert locked, f"{lock} has no pins"
    for group in groups:
        for text in project()[group]:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{text} is not in {lock.name}: run make lock"
            version, _ = locked[name]
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock.name} pins {name}=={version}, outside {text}: run make lock"
            )
    unhashed = sorted(name for name, (_, hashes) in locked.items() if hashes == 0)
    assert not unhashed, f"pins without a hash in {lock.name}: {unhashed}"


def test_the_dev_lock_pins_the_runtime_versions() -> None:
    dev = pins(DEV)
    for name, (version, _) in pins(RUNTIME).items():
        assert dev.get(name, ("missing",))[0] == version, name


def test_the_image_and_make_install_from_the_locks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --requirement requirements/runtime.txt" in dockerfile
    assert "!requirements/runtime.txt" in (ROOT / ".dockerignore").read_text().splitlines()
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements/dev.txt" in makefile
