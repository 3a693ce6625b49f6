"""The live view (/ui/) in headless Chromium against the real control plane: sign in with a
real service-account token (keyboard only), start a rollout from the form after its dry run and
watch it reach Succeeded without a reload, a failed pod shown failed with kruise's message,
pause and resume from the buttons, a restart from its form. Every wait is on what the page
shows; no test measures time. The browser must have logged no error (a CSP violation would be
one)."""

from __future__ import annotations

import httpx
from kubernetes import client as k8s
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from harness.simulator.runtime import ANNOTATION_STOP_SECONDS, INJECTED_KILL_FAILURE
from tests.support.browser import LiveService, complaints, shows, text_of, wait_for
from tests.support.pods import MakePod
from tests.support.rollouts import FAIL_KILL, create_cloneset, run_pods
from tests.support.watch import Obj

WEB = {"app": "web"}
# what the page showed, every time it changed: phases and each pod's states, in order
RECORD_WHAT_IS_SHOWN = """
window.shown = {phases: [], pods: {}};
new MutationObserver(() => {
  const phase = document.querySelector("#rollout-phase .state-name");
  const phases = window.shown.phases;
  if (phase && phases[phases.length - 1] !== phase.textContent) phases.push(phase.textContent);
  for (const li of document.querySelectorAll("#pods li")) {
    const seen = (window.shown.pods[li.dataset.pod] ||= []);
    if (seen[seen.length - 1] !== li.dataset.state) seen.push(li.dataset.state);
  }
}).observe(document.body, {subtree: true, childList: true, characterData: true});
"""


def active(driver: webdriver.Chrome) -> str:
    element = driver.switch_to.active_element
    return str(element.get_attribute("id") or element.text)


def tab_to(driver: webdriver.Chrome, element_id: str) -> None:
    """Press Tab until the element has the focus: it is reachable by keyboard."""
    for _ in range(60):
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            return
        driver.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"#{element_id} is not reachable with Tab (stuck at {active(driver)})")


def sign_in(driver: webdriver.Chrome, live: LiveService) -> None:
    """Open /ui/ and sign in with the keyboard alone, as a person pasting a token."""
    driver.get(f"{live.url}/ui/")
    wait_for(driver, "the sign-in form", lambda d: active(d) == "token-input")
    driver.switch_to.active_element.send_keys(live.token, Keys.TAB)
    assert active(driver) == "namespace-input"
    driver.switch_to.active_element.send_keys(live.namespace, Keys.ENTER)
    wait_for(driver, "the namespace page", lambda d: shows(d, "caption", "(live)"))
    assert live.token not in driver.current_url
    stored = driver.execute_script(
        "return [sessionStorage.getItem('crr-gateway.token'), localStorage.length]"
    )
    assert stored == [live.token, 0]
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(url.startswith(live.url) and live.token not in url for url in resources)
    driver.execute_script(RECORD_WHAT_IS_SHOWN)


def pod_cells(driver: webdriver.Chrome) -> dict[str, tuple[str, str]]:
    """Each pod of the grid: the state it is coloured as, and the text it shows."""
    return {
        li.get_attribute("data-pod") or "": (li.get_attribute("data-state") or "", li.text)
        for li in driver.find_elements(By.CSS_SELECTOR, "#pods li")
    }


def enabled(driver: webdriver.Chrome, element_id: str) -> bool:
    return driver.find_element(By.ID, element_id).is_enabled()


def phase(driver: webdriver.Chrome) -> str:
    return text_of(driver, "#rollout-phase .state-name")


def confirm(driver: webdriver.Chrome, question: str) -> None:
    """The confirmation dialog is open with ``question``: confirm it with the keyboard."""
    wait_for(driver, "the confirmation", lambda d: shows(d, "dialog[open]", question))
    assert active(driver) == "Keep it as it is"  # the safe choice has the focus
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert active(driver) == text_of(driver, "dialog .confirm-yes")
    driver.switch_to.active_element.send_keys(Keys.ENTER)


def rollout_of(api: httpx.Client, namespace: str, name: str) -> Obj:
    response = api.get(f"/v1/namespaces/{namespace}/rollouts/{name}")
    assert response.status_code == 200, response.text
    rollout: Obj = response.json()
    return rollout


def test_a_rollout_started_from_the_form_is_watched_to_succeeded_without_a_reload(
    browser: webdriver.Chrome, live: LiveService, kube: k8s.ApiClient
) -> None:
    create_cloneset(kube, live.namespace, "shop", 4)
    sign_in(browser, live)
    browser.execute_script("window.sameDocument = true")

    browser.find_element(By.LINK_TEXT, "Start a rollout…").click()
    wait_for(browser, "the rollout form", lambda d: d.find_elements(By.ID, "rollout-kind"))
    Select(browser.find_element(By.ID, "rollout-kind")).select_by_value("CloneSet")
    browser.find_element(By.ID, "rollout-target").send_keys("shop")
    browser.find_element(By.ID, "rollout-containers").send_keys("app")
    maximum = browser.find_element(By.ID, "rollout-max")
    maximum.clear()
    maximum.send_keys("2")
    submit = browser.find_element(By.ID, "submit-button")
    assert not submit.is_enabled()  # nothing to start before the dry run
    browser.find_element(By.ID, "dry-run-button").click()
    plan = wait_for(browser, "the dry run's plan", lambda d: shows(d, "#dry-run", "4 pods"))
    assert "at most 2 unavailable at once" in plan.text
    assert len(plan.find_elements(By.CSS_SELECTOR, ".plan li")) == 4
    rollouts = live.api.get(f"/v1/namespaces/{live.namespace}/rollouts").json()["items"]
    assert rollouts == []  # the dry run created nothing
    assert submit.is_enabled()
    submit.click()

    wait_for(browser, "the rollout page", lambda d: shows(d, "h1", "Rollout "))
    name = text_of(browser, "#rollout-title .mono")
    wait_for(browser, "the rollout to succeed", lambda d: phase(d) == "Succeeded")

    cells = pod_cells(browser)
    assert len(cells) == 4
    assert all(state == "Succeeded" and "Succeeded" in text for state, text in cells.values())
    progress = browser.find_element(By.ID, "rollout-progress")
    assert (progress.get_attribute("value"), progress.get_attribute("max")) == ("4", "4")
    assert "4 of 4 pods done" in text_of(browser, "#progress-label")
    assert text_of(browser, "#budget-label") == "Unavailable now: 0 of a budget of 2"
    shown = browser.execute_script("return window.shown")
    assert shown["phases"][0] == "Progressing" and shown["phases"][-1] == "Succeeded"
    assert any("Restarting" in states for states in shown["pods"].values()), shown
    assert browser.execute_script("return window.sameDocument") is True  # never reloaded
    assert rollout_of(live.api, live.namespace, name)["phase"] == "Succeeded"

    browser.find_element(By.PARTIAL_LINK_TEXT, "Namespace").click()
    row = wait_for(browser, "the rollout listed", lambda d: shows(d, "tbody tr", name))
    assert "Succeeded" in row.text and "CloneSet shop" in row.text
    assert complaints(browser) == []


def test_a_failed_pod_is_shown_failed_with_kruises_message_and_resume_goes_on(
    browser: webdriver.Chrome, live: LiveService, kube: k8s.ApiClient
) -> None:
    run_pods(kube, live.namespace, ["web-0"], WEB, ["app"], annotations={FAIL_KILL: "app"})
    run_pods(kube, live.namespace, ["web-1", "web-2"], WEB, ["app"])
    created = live.api.post(
        f"/v1/namespaces/{live.namespace}/rollouts",
        json={"selector": {"matchLabels": WEB}, "unreadyGracePeriodSeconds": 0},
    )
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    sign_in(browser, live)
    wait_for(browser, "the rollout listed", lambda d: d.find_elements(By.LINK_TEXT, name))
    browser.find_element(By.LINK_TEXT, name).click()

    wait_for(browser, "the rollout paused", lambda d: phase(d) == "Paused")
    state, text = pod_cells(browser)["web-0"]
    assert state == "Failed" and "Failed" in text and INJECTED_KILL_FAILURE in text
    assert "web-0" in text_of(browser, "#rollout-message")
    assert not browser.find_element(By.ID, "rollout-pause").is_enabled()

    resume = browser.find_element(By.ID, "rollout-resume")
    assert resume.is_enabled()
    resume.click()
    confirm(browser, "Resume this rollout?")
    wait_for(browser, "the rollout to end", lambda d: phase(d) == "Failed")
    assert {pod: state for pod, (state, _) in pod_cells(browser).items()} == {
        "web-0": "Failed",
        "web-1": "Succeeded",
        "web-2": "Succeeded",
    }
    assert rollout_of(live.api, live.namespace, name)["phase"] == "Failed"
    assert complaints(browser) == []


def test_pause_and_resume_from_the_buttons_with_the_keyboard(
    browser: webdriver.Chrome, live: LiveService, kube: k8s.ApiClient
) -> None:
    # each container takes 3 s to stop: one pod at a time, the rollout lasts long enough to
    # be paused before its last pod starts
    names = [f"web-{i}" for i in range(4)]
    run_pods(kube, live.namespace, names, WEB, ["app"], annotations={ANNOTATION_STOP_SECONDS: "3"})
    created = live.api.post(
        f"/v1/namespaces/{live.namespace}/rollouts",
        json={"selector": {"matchLabels": WEB}, "unreadyGracePeriodSeconds": 0},
    )
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    sign_in(browser, live)
    browser.get(f"{live.url}/ui/#/ns/{live.namespace}/rollouts/{name}")
    wait_for(browser, "pause offered", lambda d: enabled(d, "rollout-pause"))

    tab_to(browser, "rollout-pause")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(browser, "the confirmation", lambda d: shows(d, "dialog[open]", "Pause this rollout?"))
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # changed my mind
    wait_for(browser, "the dialog closed", lambda d: not shows(d, "dialog[open]", ""))
    assert active(browser) == "rollout-pause"
    assert rollout_of(live.api, live.namespace, name)["paused"] is False

    browser.switch_to.active_element.send_keys(Keys.ENTER)
    confirm(browser, "Pause this rollout?")
    wait_for(browser, "the rollout paused", lambda d: phase(d) == "Paused")
    paused = rollout_of(live.api, live.namespace, name)
    assert paused["paused"] and paused["counts"]["Waiting"] > 0, paused
    assert shows(browser, "#status", "Pause: done")

    tab_to(browser, "rollout-resume")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    confirm(browser, "Resume this rollout?")
    wait_for(browser, "the rollout to succeed", lambda d: phase(d) == "Succeeded")
    assert {state for state, _ in pod_cells(browser).values()} == {"Succeeded"}
    assert complaints(browser) == []


def test_a_restart_is_checked_with_a_dry_run_then_made_and_followed(
    browser: webdriver.Chrome, live: LiveService, make_pod: MakePod
) -> None:
    make_pod("web-0", ["app", "sidecar"])
    sign_in(browser, live)
    browser.find_element(By.LINK_TEXT, "Restart containers of a pod…").click()
    wait_for(browser, "the restart form", lambda d: d.find_elements(By.ID, "restart-pod"))
    browser.find_element(By.ID, "restart-pod").send_keys("web-0")
    browser.find_element(By.ID, "restart-containers").send_keys("app")
    browser.find_element(By.ID, "dry-run-button").click()
    checked = wait_for(browser, "the dry run", lambda d: shows(d, "#dry-run", "Containers"))
    assert "app" in checked.text and "sidecar" not in checked.text
    assert live.api.get(f"/v1/namespaces/{live.namespace}/restarts").json()["items"] == []

    # a changed input must be checked again before it can be sent
    browser.find_element(By.ID, "restart-reason").send_keys("new config")
    submit = browser.find_element(By.ID, "submit-button")
    assert not submit.is_enabled()
    browser.find_element(By.ID, "dry-run-button").click()
    wait_for(browser, "checked again", lambda d: enabled(d, "submit-button"))
    submit.click()

    def succeeded(driver: webdriver.Chrome) -> WebElement | None:
        row = shows(driver, "tbody tr", "web-0")
        return row if row is not None and "Succeeded" in row.text else None

    row = wait_for(browser, "the restart to succeed on the namespace page", succeeded)
    assert "app" in row.text
    (restart,) = live.api.get(f"/v1/namespaces/{live.namespace}/restarts").json()["items"]
    assert restart["containers"] == ["app"] and restart["reason"] == "new config"
    assert complaints(browser) == []


def test_a_refused_token_is_not_kept_and_signing_out_forgets_it(
    browser: webdriver.Chrome, live: LiveService
) -> None:
    browser.get(f"{live.url}/ui/")
    wait_for(browser, "the sign-in form", lambda d: active(d) == "token-input")
    browser.switch_to.active_element.send_keys("not-a-token", Keys.TAB, live.namespace, Keys.ENTER)
    wait_for(browser, "the refusal", lambda d: shows(d, "#sign-in .notice", "refused the token"))
    assert browser.execute_script("return sessionStorage.length") == 0
    complaints(browser)  # the 401 is logged by the browser: expected here

    sign_in(browser, live)
    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, "the sign-in form", lambda d: d.find_elements(By.ID, "token-input"))
    assert browser.execute_script("return sessionStorage.getItem('crr-gateway.token')") is None
    assert complaints(browser) == []
