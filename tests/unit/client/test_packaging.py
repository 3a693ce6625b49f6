"""The client stands alone: standard library only, never the service, and a start that loads
nothing it does not need. (How fast it starts is measured in bench/cli_start.py, not here.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import crr_client

PACKAGE = Path(crr_client.__file__).parent


def imported_modules() -> set[str]:
    names: set[str] = set()
    for source in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_only_the_standard_library_and_itself() -> None:
    outside = imported_modules() - set(sys.stdlib_module_names) - {"crr_client"}
    assert outside == set()


def test_version_loads_neither_argparse_nor_the_network_stack() -> None:
    probe = (
        "import sys; from crr_client.cli import main; main(['--version']); "
        "print(sorted(m for m in ('argparse', 'http.client', 'ssl', 'json', 'typing') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    version, loaded = result.stdout.splitlines()
    assert version == f"crr {crr_client.__version__}"
    assert loaded == "[]"


def test_the_console_script_is_installed_next_to_the_interpreter() -> None:
    """`make dev` and `make test` install the client into the project's virtualenv."""
    script = Path(sys.executable).parent / "crr"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout == f"crr {crr_client.__version__}\n"
