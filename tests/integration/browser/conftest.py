"""Fixtures of the browser tests: Debian's Chromium driven by its chromedriver through Selenium
(nothing downloaded: both come from apt, ``make test`` installs them), the service on the real
control plane in ``kubernetes`` auth mode, and a caller with a real service-account token, as a
person would paste it into the sign-in form."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from service.config import Settings
from tests.support.auth import (
    AUDIENCE,
    bind,
    caller_cluster_role,
    delete_cluster_role,
    ensure_service_account,
    may_create,
    mint,
    running_service,
)
from tests.support.browser import CHROMEDRIVER, CHROMIUM, LiveService, chromium_options
from tests.support.rest import Rest
from tests.support.waiting import wait_until


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the session, with a profile of its own; every test's
    service has its own port, so no page shares an origin (or a sessionStorage) with another
    test's."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert Path(binary).exists(), f"{binary} is missing: make test installs it (apt)"
    options = chromium_options(tmp_path_factory.mktemp("chromium-profile"))
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_window_size(1280, 1000)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def caller_role(admin: Rest) -> Iterator[str]:
    role = caller_cluster_role(admin, f"browser-{secrets.token_hex(3)}")
    try:
        yield role
    finally:
        delete_cluster_role(admin, role)


@pytest.fixture
def live(
    control_plane: ControlPlane,
    admin: Rest,
    namespace: str,
    caller_role: str,
    _simulator: Simulator,
) -> Iterator[LiveService]:
    """The service serving the test's namespace, and a ``portal`` service account allowed
    there (crr-gateway-caller, audience-scoped token) as docs/auth.md sets one up."""
    ensure_service_account(admin, namespace, "portal")
    bind(admin, namespace, caller_role, namespace, "portal")
    wait_until("the portal's binding", lambda: may_create(admin, namespace, "portal", namespace))
    token = mint(admin, namespace, "portal", [AUDIENCE])
    settings = Settings(
        kubeconfig=control_plane.kubeconfig,
        namespaces=[namespace],
        auth_mode="kubernetes",
        auth_audiences=[AUDIENCE],
        sse_heartbeat_seconds=1.0,
        relist_backoff_initial_seconds=0.2,
        relist_backoff_max_seconds=2.0,
        rate_limit_per_second=0,
    )
    with ExitStack() as stack:
        api = stack.enter_context(running_service(settings))
        api.headers["Authorization"] = f"Bearer {token}"
        yield LiveService(str(api.base_url).rstrip("/"), api, token, namespace)
