"""/docs in headless Chromium: Swagger UI renders every operation of openapi.json from files
the service itself serves (no CDN: no request leaves the service's origin), under the page's
Content-Security-Policy (a violation would be a logged error)."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.support.browser import LiveService, complaints, wait_for


def test_the_docs_render_every_operation_from_the_service_alone(
    browser: webdriver.Chrome, live: LiveService
) -> None:
    spec = live.api.get("/openapi.json").json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    browser.get(f"{live.url}/docs")

    def rendered(driver: webdriver.Chrome) -> set[tuple[str, str]] | None:
        shown = {
            (
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
                    "data-path"
                )
                or "",
            )
            for block in driver.find_elements(By.CSS_SELECTOR, ".opblock")
        }
        return shown if len(shown) >= len(operations) else None

    assert wait_for(browser, "every operation rendered", rendered) == operations
    assert "crr-gateway" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert any(url.endswith("/docs/swagger-ui-bundle.js") for url in loaded)
    assert all(url.startswith(f"{live.url}/") for url in loaded), loaded
    assert complaints(browser) == []
