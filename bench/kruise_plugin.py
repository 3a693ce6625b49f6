"""Build ``kubectl-kruise`` (``github.com/openkruise/kruise-tools``, main package ``cmd/plugin``)
at one pinned version, for the bench's CLI comparison. Nothing of it lands in the repository.

The module proxy here refuses the module's version list and ``@latest`` but serves the exact
version, so the version is pinned. The build happens in a throwaway module under the user's
cache directory that requires kruise-tools and repeats the ``replace`` directives of its go.mod
(read from the module cache, not copied by hand): a consumer module does not inherit them, and
without them Go would pick newer golang.org/x modules than kruise-tools was released with. The
binary is cached under the kruise-tools version and the Go version, so a second run reuses it
and a new Go rebuilds it.

``python -m bench.kruise_plugin`` builds (or finds) it and prints its path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The control plane's Go settings (CGO_ENABLED=0, GOSUMDB=off, GOTOOLCHAIN=local) and flags;
# its cache root is ours too. Private names: importing them keeps one definition, while editing
# harness/build.py would change the control plane's cache key and rebuild its binaries.
from harness.build import _FLAGS as GO_BUILD_FLAGS
from harness.build import _go_env, cache_root

MODULE = "github.com/openkruise/kruise-tools"
VERSION = "v1.2.2"
MAIN_PACKAGE = f"{MODULE}/cmd/plugin"
BINARY = "kubectl-kruise"
BUILD_TIMEOUT_S = 1800.0


class BuildError(RuntimeError):
    """The plugin could not be built here; the message says which step failed and why."""


@dataclass(frozen=True, slots=True)
class Plugin:
    binary: Path
    version: str  # kruise-tools version
    go: str  # `go version` of the toolchain that built it


def tools_dir() -> Path:
    return cache_root().parent / "tools" / f"{BINARY}-{VERSION}"


def _env() -> dict[str, str]:
    # -mod=mod: the throwaway module has no go.sum yet; Go writes it (GOSUMDB is off, as for
    # the control plane, because the checksum database is not reachable from here)
    return {**_go_env(), "GOFLAGS": "-mod=mod"}


def _go(work: Path, *args: str, timeout: float = BUILD_TIMEOUT_S) -> str:
    argv = ["go", *args]
    try:
        done = subprocess.run(
            argv, cwd=work, env=_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"`{' '.join(argv)}` timed out after {timeout:.0f}s") from e
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BuildError(f"`{' '.join(argv)}` failed: " + " / ".join(tail))
    return done.stdout.strip()


def go_version(work: Path) -> str:
    """``go1.26.8``: the part of ``go version`` that decides the binary."""
    return _go(work, "env", "GOVERSION")


def upstream_replaces(work: Path) -> list[str]:
    """``old=new@version`` for each ``replace`` of kruise-tools' own go.mod at VERSION."""
    info = json.loads(_go(work, "mod", "download", "-json", f"{MODULE}@{VERSION}"))
    if "Error" in info:
        raise BuildError(f"go mod download {MODULE}@{VERSION}: {info['Error']}")
    go_mod = json.loads(_go(work, "mod", "edit", "-json", str(Path(info["Dir"]) / "go.mod")))
    replaces = []
    for rule in go_mod.get("Replace") or []:
        old, new = rule["Old"], rule["New"]
        if not new.get("Version"):  # a directory replacement cannot be repeated outside
            raise BuildError(f"{MODULE}@{VERSION} replaces {old['Path']} with a directory")
        source = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        replaces.append(f"{source}={new['Path']}@{new['Version']}")
    return replaces


def ensure_plugin(say: Callable[[str], None] | None = None) -> Plugin:
    """The cached binary, built first when missing. Raises BuildError."""
    if shutil.which("go") is None:
        raise BuildError("go is not installed")
    work = tools_dir()
    work.mkdir(parents=True, exist_ok=True)
    go = go_version(work)
    binary = work / go / BINARY
    if binary.exists():
        return Plugin(binary, VERSION, go)
    if say is not None:
        say(f"building {BINARY} {MODULE}@{VERSION} with {go} in {work} (minutes, once) ...")
    for leftover in ("go.mod", "go.sum"):  # a throwaway module: start it afresh
        (work / leftover).unlink(missing_ok=True)
    _go(work, "mod", "init", "crr-gateway.local/tools/kubectl-kruise")
    for replace in upstream_replaces(work):
        _go(work, "mod", "edit", f"-replace={replace}")
    _go(work, "get", f"{MODULE}@{VERSION}")
    binary.parent.mkdir(exist_ok=True)
    partial = binary.with_name(binary.name + ".partial")
    _go(work, "build", *GO_BUILD_FLAGS, "-ldflags=-s -w", "-o", str(partial), MAIN_PACKAGE)
    partial.rename(binary)  # only a finished build is ever found by the check above
    return Plugin(binary, VERSION, go)


def main() -> int:
    try:
        plugin = ensure_plugin(lambda message: print(message, file=sys.stderr, flush=True))
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(plugin.binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
