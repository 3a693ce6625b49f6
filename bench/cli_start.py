"""Start-up of the ``crr`` command line: ``crr --version`` against a bare ``python -c pass`` of
the same interpreter, in the same run, process start included; medians of alternating runs.

Setups:
- the project's ``.venv``, where ``make dev`` installs the client (editable);
- a fresh virtualenv holding nothing but ``pip install ./client`` (what a user or a CI job
  gets), built in a temporary directory, first with the pip that ``venv`` bundles, then with
  the current pip: pip before 25.0 writes a console-script wrapper that imports ``re`` before
  any of our code runs. ``--no-clean`` skips these.

``python -m bench.cli_start [--runs N] [--no-clean]`` prints a markdown table."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
VENV = ROOT / ".venv"
WARM_UP = 3
_BUILD_LEFTOVERS = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")


@dataclass(frozen=True, slots=True)
class StartUp:
    setup: str
    python_ms: float  # median wall time of `python -c pass`
    crr_ms: float  # median wall time of `crr --version`
    runs: int

    @property
    def ratio(self) -> float:
        return self.crr_ms / self.python_ms


# As people run it: with bytecode cached. Without this, an environment that sets
# PYTHONDONTWRITEBYTECODE would compile the editable client's modules on every start.
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _wall_ms(argv: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV)
    return (time.perf_counter() - started) * 1000


def measure(setup: str, venv: Path, runs: int) -> StartUp:
    """Alternate the two commands so that load on the machine hits both alike."""
    python = [str(venv / "bin" / "python"), "-c", "pass"]
    crr = [str(venv / "bin" / "crr"), "--version"]
    for _ in range(WARM_UP):
        _wall_ms(python)
        _wall_ms(crr)
    python_ms: list[float] = []
    crr_ms: list[float] = []
    for _ in range(runs):
        python_ms.append(_wall_ms(python))
        crr_ms.append(_wall_ms(crr))
    return StartUp(setup, statistics.median(python_ms), statistics.median(crr_ms), runs)


def _pip(venv: Path, *args: str) -> None:
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run(runs: int = 40, *, clean: bool = True) -> list[StartUp]:
    results = [measure("project .venv (editable install)", VENV, runs)]
    if not clean:
        return results
    with tempfile.TemporaryDirectory(prefix="crr-start-") as tmp:
        # a copy, so that the build leaves no client/build/ in the working tree
        source = shutil.copytree(CLIENT, Path(tmp) / "client", ignore=_BUILD_LEFTOVERS)
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # pip before 25.0 writes console scripts that `import re` first (pypa/pip#13166)
        _pip(venv, str(source))
        results.append(measure("fresh venv, `pip install ./client`, bundled pip", venv, runs))
        _pip(venv, "--upgrade", "pip")
        _pip(venv, "--force-reinstall", "--no-deps", str(source))
        results.append(measure("fresh venv, `pip install ./client`, current pip", venv, runs))
    return results


def render(results: Sequence[StartUp]) -> str:
    lines = [
        "| setup | `python -c pass` | `crr --version` | ratio |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.setup} | {r.python_ms:.1f} ms | {r.crr_ms:.1f} ms | {r.ratio:.2f}x |"
        for r in results
    ]
    runs = {r.runs for r in results}
    lines.append(f"\nMedians of {', '.join(map(str, sorted(runs)))} alternating runs each.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=40, help="runs of each command")
    parser.add_argument("--no-clean", action="store_true", help="skip the fresh virtualenv")
    args = parser.parse_args(argv)
    print(render(run(args.runs, clean=not args.no_clean)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
