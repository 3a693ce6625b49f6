"""``python -m service.openapi`` writes ``openapi.yaml`` (``--check``: fail when stale)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from service.app import create_app
from service.config import Settings

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.yaml"


def spec() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def render() -> str:
    return yaml.safe_dump(spec(), sort_keys=False, allow_unicode=True, width=100)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        current = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
        if current != text:
            print(f"{OPENAPI_FILE} is stale: run python -m service.openapi", file=sys.stderr)
            return 1
        return 0
    OPENAPI_FILE.write_text(text)
    print(f"wrote {OPENAPI_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
