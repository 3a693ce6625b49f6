"""The pages' files and headers (``service.http.pages``): /docs and /ui/ under a strict
Content-Security-Policy, every asset from the service itself (no URL of another host in what
we ship), no inline script or style, and Swagger UI's files from the pinned package. (Rendered
in a real browser: tests/integration/browser/.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.http.pages import STATIC
from tests.support.fake_kube import FakeKube
from tests.support.serving import serve

SHIPPED = sorted(p for p in STATIC.rglob("*") if p.suffix in (".html", ".js", ".css"))


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    app = create_app(
        Settings(namespaces=["ns"], auth_mode="none"), kube_factory=lambda _s: FakeKube()
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def policy(response: httpx.Response) -> dict[str, str]:
    directives = response.headers["content-security-policy"].split(";")
    return {d.split()[0]: " ".join(d.split()[1:]) for d in directives if d.strip()}


SERVED = ["/docs", "/docs/docs.js", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"]
SERVED += ["/ui/", "/ui/app.js", "/ui/api.js", "/ui/app.css"]


@pytest.mark.parametrize("path", SERVED)
def test_every_page_file_is_served_under_the_strict_policy(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, path
    directives = policy(response)
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'" and directives["object-src"] == "'none'"
    assert "script-src" not in directives and "style-src" not in directives  # 'self' only
    assert "unsafe" not in response.headers["content-security-policy"]
    # images from data: only on /docs, for Swagger UI's icons
    assert directives.get("img-src") == ("'self' data:" if path.startswith("/docs") else None)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_pages_are_html_and_ui_without_a_slash_goes_to_it(client: httpx.Client) -> None:
    for path in ("/docs", "/ui/"):
        assert client.get(path).headers["content-type"].startswith("text/html")
    redirect = client.get("/ui")
    assert redirect.status_code in (301, 307) and redirect.headers["location"].endswith("/ui/")
    assert client.get("/docs/redoc.standalone.js").status_code == 200  # shipped, not linked
    assert "redoc" not in client.get("/docs").text.lower()


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(STATIC)) for p in SHIPPED])
def test_nothing_we_ship_loads_from_another_host_or_inline(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), "a URL of another host"
    if str(path).endswith(".html"):
        assert "<style" not in text and " style=" not in text
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag, f"an inline script: {tag}"
        assert re.search(r"\son[a-z]+=", text) is None, "an inline event handler"
    if str(path).endswith(".js"):
        assert "innerHTML =" not in text and "eval(" not in text  # text nodes only


def test_the_docs_page_starts_swagger_ui_from_files(client: httpx.Client) -> None:
    page = client.get("/docs").text
    assert re.findall(r'<script src="([^"]+)"', page) == [
        "docs/swagger-ui-bundle.js",
        "docs/docs.js",
    ]
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].split(";")[0] in (
        "text/javascript",
        "application/javascript",
    )
    assert "SwaggerUIBundle" in bundle.text
    assert "openapi.json" in client.get("/docs/docs.js").text
