"""Running ``wrk`` (Debian package ``wrk``) with ``bench/wrk.lua``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.stats import Run, parse_wrk

LUA = Path(__file__).resolve().parent / "wrk.lua"


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing: run `sudo apt-get install -y wrk` and retry")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split(" [")[0] if first else "wrk (unknown version)"


def run_wrk(
    wrk: str, url: str, *, connections: int, seconds: float, token: str | None = None
) -> Run:
    """One fixed-duration run at ``connections`` concurrent keep-alive connections."""
    threads = max(1, min(2, connections))
    env = {**os.environ, "BENCH_TOKEN": token or ""}
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return parse_wrk(result.stdout)
