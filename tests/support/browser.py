"""Driving the pages in Debian's headless Chromium (tests/integration/browser/): the launch
flags (no network of its own, a fresh profile), waiting on what the page shows (never on time),
and reading what the browser complained about (CSP violations, script errors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
PATIENCE = 120.0  # an upper bound for a page to show what a test waits for; never asserted

T = TypeVar("T")


def chromium_options(profile: Path) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def wait_for(
    driver: webdriver.Chrome, what: str, check: Callable[[webdriver.Chrome], T | None]
) -> T:
    """Poll ``check`` until it returns something truthy; fails naming ``what``."""
    waiting = WebDriverWait(
        driver,
        PATIENCE,
        poll_frequency=0.1,
        ignored_exceptions=(StaleElementReferenceException,),  # the page re-rendered meanwhile
    )
    result = waiting.until(check, f"never: {what}")
    assert result is not None
    return result


def text_of(driver: webdriver.Chrome, css: str) -> str:
    """The text the first element matching ``css`` shows now ("" if none), read at once."""
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )
    return str(text)


def shows(driver: webdriver.Chrome, css: str, text: str) -> WebElement | None:
    """The first element matching ``css`` whose text contains ``text``, if any."""
    for element in driver.find_elements(By.CSS_SELECTOR, css):
        if text in element.text:
            return element
    return None


def complaints(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """What the browser logged as errors since the last call: blocked by the
    Content-Security-Policy, a script error, a failed load."""
    logged: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in logged if entry["level"] == "SEVERE"]


@dataclass(frozen=True)
class LiveService:
    url: str
    api: httpx.Client  # as the caller, for arranging what the page then shows
    token: str
    namespace: str
