"""Build kube-apiserver and kruise-manager from the Go module proxy, once per pinned version.

Both binaries come from the one module graph in ``harness/go.mod`` so they share a Go build
cache. The binaries land in the user's cache directory under a key made of everything that
decides their content (go.mod, go.sum, the Go version and our build flags), so a fresh clone on
the same machine, such as CI's, reuses them and a change of pins rebuilds them.

Run ``python -m harness.build`` to build (or find) them and print their paths.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent
KRUISE_MODULE = "github.com/openkruise/kruise"
KUBERNETES_VERSION = "v1.32.13"


@dataclass(frozen=True)
class Target:
    name: str
    package: str
    ldflags: tuple[str, ...]


_COMPONENT_BASE = "k8s.io/component-base/version"
_CLIENT_GO = "k8s.io/client-go/pkg/version"
_MAJOR, _MINOR = KUBERNETES_VERSION[1:].split(".")[:2]

TARGETS = (
    Target(
        "kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        tuple(
            f"-X {pkg}.{key}={value}"
            for pkg in (_COMPONENT_BASE, _CLIENT_GO)
            for key, value in (
                ("gitVersion", KUBERNETES_VERSION),
                ("gitMajor", _MAJOR),
                ("gitMinor", _MINOR),
                ("gitTreeState", "clean"),
            )
        ),
    ),
    Target("kruise-manager", KRUISE_MODULE, ()),
)
_FLAGS = ("-trimpath",)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # The checksum database is not reachable from here; go.sum (committed) still pins every hash.
    env.update(CGO_ENABLED="0", GOSUMDB="off", GOFLAGS="-mod=readonly", GOTOOLCHAIN="local")
    return env


def _go(*args: str) -> str:
    result = subprocess.run(
        ["go", *args],
        cwd=MODULE_DIR,
        env=_go_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crr-gateway" / "controlplane"


def cache_key() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "build.py"):
        digest.update((MODULE_DIR / name).read_bytes())
    digest.update(_go("version").encode())
    return digest.hexdigest()[:16]


def bin_dir() -> Path:
    return cache_root() / cache_key()


def _build(target: Target, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    ldflags = " ".join(("-s", "-w", *target.ldflags))
    cmd = ["go", "build", "-v", *_FLAGS, "-ldflags", ldflags, "-o", str(tmp), target.package]
    started = time.monotonic()
    print(f"[build] {target.name}: go build {target.package}", flush=True)
    proc = subprocess.Popen(
        cmd, cwd=MODULE_DIR, env=_go_env(), stderr=subprocess.PIPE, text=True, bufsize=1
    )
    compiled = 0
    tail: list[str] = []
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(30):
            minutes = (time.monotonic() - started) / 60
            print(
                f"[build] {target.name}: {compiled} packages compiled, {minutes:.1f} min",
                flush=True,
            )

    threading.Thread(target=heartbeat, daemon=True).start()
    assert proc.stderr is not None
    for line in proc.stderr:
        compiled += 1
        tail = [*tail[-40:], line.rstrip()]
    done.set()
    if proc.wait() != 0:
        print("\n".join(tail), file=sys.stderr)
        raise RuntimeError(f"go build of {target.name} failed")
    tmp.rename(out)
    minutes = (time.monotonic() - started) / 60
    print(f"[build] {target.name}: done in {minutes:.1f} min -> {out}", flush=True)


def ensure_binaries() -> dict[str, Path]:
    """Return the path of each binary, building whichever is missing."""
    if shutil.which("go") is None:
        raise RuntimeError("Go is required to build the local control plane (see README.md)")
    directory = bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for target in TARGETS:
        out = directory / target.name
        if not out.exists():
            _build(target, out)
        paths[target.name] = out
    return paths


def kruise_source_dir() -> Path:
    """The kruise module in the Go module cache (its CRDs and webhook manifests are used as-is)."""
    _go("mod", "download", KRUISE_MODULE)
    return Path(_go("list", "-m", "-f", "{{.Dir}}", KRUISE_MODULE))


if __name__ == "__main__":
    for name, path in ensure_binaries().items():
        print(f"{name}: {path}")
    print(f"kruise source: {kruise_source_dir()}")
