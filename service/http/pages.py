"""The pages a person opens in a browser: the API docs at ``/docs`` and the live view at
``/ui/``. Everything they load ships inside the package, so they work with no network at all:
the live view's own files (``static/ui/``, vanilla JavaScript, no build step) and Swagger UI's
bundle from the pinned ``fastapi-offline`` distribution, which packages Swagger UI's release
files (``static/docs.html`` and ``static/docs/`` add the page and the script that starts it).

Both are served under a strict Content-Security-Policy: same origin only, no inline script or
style (Swagger UI is started by a script file, not an inline one), no framing. Swagger UI's
stylesheet draws its icons from ``data:`` images, which the docs' policy allows for images
alone. ReDoc is not served: it injects inline styles, which the policy forbids."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"
UI_DIR = STATIC / "ui"
DOCS_PAGE = STATIC / "docs.html"  # outside DOCS_DIR: its relative links work from /docs only
DOCS_DIR = STATIC / "docs"
SWAGGER_UI = ("fastapi_offline", "static")  # swagger-ui-bundle.js, swagger-ui.css, favicon.png

_POLICY = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
UI_POLICY = _POLICY
DOCS_POLICY = _POLICY + "; img-src 'self' data:"


def security_headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",  # revalidate (ETag), so an upgrade shows at once
    }


class PageFiles(StaticFiles):
    """Static files answered with the pages' security headers."""

    def __init__(
        self,
        *,
        policy: str,
        directory: Path,
        packages: list[str | tuple[str, str]] | None = None,
        html: bool = False,
    ) -> None:
        super().__init__(directory=directory, packages=packages, html=html)
        self._headers = security_headers(policy)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self._headers)
        return response


def install(app: FastAPI) -> None:
    """``/docs`` (Swagger UI on ``/openapi.json``) and ``/ui/`` (the live view)."""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return FileResponse(
            DOCS_PAGE,
            media_type="text/html; charset=utf-8",
            headers=security_headers(DOCS_POLICY),
        )

    app.mount(
        "/docs",
        PageFiles(policy=DOCS_POLICY, directory=DOCS_DIR, packages=[SWAGGER_UI]),
        name="docs-files",
    )
    app.mount("/ui", PageFiles(policy=UI_POLICY, directory=UI_DIR, html=True), name="ui")
