"""The machine and the versions a run measured."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Environment:
    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    versions: dict[str, str]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def kruise_version() -> str:
    text = (REPO / "harness" / "go.mod").read_text()
    match = re.search(r"github\.com/openkruise/kruise (v\S+)", text)
    return match.group(1) if match else "unknown"


def collect(apiserver: str, wrk: str) -> Environment:
    versions = {
        "Python": platform.python_version(),
        "fastapi": package("fastapi"),
        "uvicorn": package("uvicorn"),
        "uvloop": package("uvloop"),
        "httptools": package("httptools"),
        "kubernetes (python client)": package("kubernetes"),
        "kube-apiserver": apiserver,
        "OpenKruise (kruise-manager)": kruise_version(),
        "wrk": wrk,
    }
    return Environment(
        cpu=cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=memory_gib(),
        kernel=platform.release(),
        versions=versions,
    )
