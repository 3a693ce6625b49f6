"""The CLIs users have today: ``kubectl kruise create ContainerRecreateRequest`` (built from
the ``github.com/openkruise/kruise-tools`` Go module when it builds here) and ``kubectl create``
of a hand-written CRR manifest; one process per restart, process start included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

KRUISE_TOOLS = "github.com/openkruise/kruise-tools"
KRUISE_TOOLS_MAIN = f"{KRUISE_TOOLS}/cmd/plugin"  # builds the kubectl-kruise plugin


@dataclass(frozen=True, slots=True)
class Build:
    binary: Path | None
    error: str | None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crr-gateway" / "bench" / "kruise-tools"


def build_kruise_tools(timeout: float = 900) -> Build:
    """Build ``kubectl-kruise`` in a throwaway module under the cache directory (never in the
    repository). Returns the binary, or the error that stopped the build."""
    if shutil.which("go") is None:
        return Build(None, "go is not installed")
    work = cache_dir()
    binary = work / "kubectl-kruise"
    if binary.exists():
        return Build(binary, None)
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module crrbench/kruisetools\n\ngo 1.24\n")
    env = {**os.environ, "GOSUMDB": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    steps = [
        ["go", "get", f"{KRUISE_TOOLS}@latest"],
        ["go", "build", "-trimpath", "-o", str(binary), KRUISE_TOOLS_MAIN],
    ]
    for argv in steps:
        try:
            result = subprocess.run(
                argv, cwd=work, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return Build(None, f"`{' '.join(argv)}` timed out after {timeout:.0f}s")
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            return Build(None, f"`{' '.join(argv)}` failed: " + " / ".join(message[-3:]))
    return Build(binary, None)


def kruise_create_argv(
    binary: Path, kubeconfig: Path, namespace: str, pod: str, name: str
) -> list[str]:
    return [
        str(binary),
        "--kubeconfig",
        str(kubeconfig),
        "create",
        "ContainerRecreateRequest",
        name,
        f"--namespace={namespace}",
        f"--pod={pod}",
    ]


def run_quietly(argv: list[str]) -> None:
    subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)


def kubectl_create(kubeconfig: Path, manifest: dict[str, object]) -> None:
    """``kubectl create -f -`` of one CRR manifest, as a person with hand-written YAML does."""
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "create", "-f", "-", "-o", "name"],
        input=json.dumps(manifest),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def curl_create(url: str, body: dict[str, object]) -> None:
    """``curl -X POST`` of one restart to the service: the same process-per-restart cost."""
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            json.dumps(body),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    if result.stdout.strip() != "201":
        raise RuntimeError(f"curl create answered {result.stdout.strip()}: {result.stderr}")
