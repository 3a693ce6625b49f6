"""``crr``, the command line, end to end: the installed executable against the service running
as a process of its own (``python -m service``) on the real control plane, in ``kubernetes``
auth mode, the caller a real service account bound to ``crr-gateway-caller`` whose token is read
from a file (``CRR_GATEWAY_TOKEN_FILE``). Each test asserts what a CI script would see: the exit
code, stdout versus stderr, and ``-o json`` equal to what the API answers.

The service caps long polls at 2 s (``max_wait_seconds``), so ``--wait`` asks again every few
seconds while a restart is held up, and reviews every token afresh (no TokenReview cache): the
token-rotation test needs both to know that the command line read the file again after the old
token stopped working."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from harness.controlplane import ControlPlane
from harness.simulator import Simulator
from harness.simulator.runtime import INJECTED_KILL_FAILURE
from tests.support.api import crrs_in, restarts_url, settled
from tests.support.auth import (
    AUDIENCE,
    bearer,
    bind,
    caller_cluster_role,
    delete_cluster_role,
    ensure_namespace,
    ensure_service_account,
    may_create,
    mint,
    run_pod,
)
from tests.support.rest import Rest
from tests.support.rollouts import (
    FAIL_KILL,
    create_cloneset,
    list_pods,
    rollout_crrs,
    rollouts_url,
    run_pods,
)
from tests.support.service_process import ServiceProcess
from tests.support.serving import free_port
from tests.support.waiting import wait_until

CRR = Path(sys.executable).with_name("crr")  # the console script `make` installs into .venv
Obj = dict[str, Any]


@dataclass(frozen=True)
class Gateway:
    url: str
    namespace: str
    callers: str  # the namespace of the callers' service accounts
    role: str  # this module's copy of crr-gateway-caller
    token_file: Path
    api: httpx.Client  # the same caller over plain HTTP, for what the API answers


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def gateway(
    control_plane: ControlPlane,
    admin: Rest,
    _simulator: Simulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    tag = secrets.token_hex(3)
    namespace, callers = f"cli-{tag}", f"cli-callers-{tag}"
    ensure_namespace(admin, namespace)
    ensure_namespace(admin, callers)
    ensure_service_account(admin, callers, "ci")
    role = caller_cluster_role(admin, tag)
    bind(admin, namespace, role, callers, "ci")
    wait_until("the ci binding", lambda: may_create(admin, callers, "ci", namespace))
    token = mint(admin, callers, "ci", [AUDIENCE])
    directory = tmp_path_factory.mktemp("cli")
    token_file = directory / "token"
    token_file.write_text(token + "\n")
    service = ServiceProcess(
        control_plane.kubeconfig,
        namespace,
        directory / "service.log",
        {
            "CRR_GATEWAY_AUTH_MODE": "kubernetes",
            "CRR_GATEWAY_AUTH_AUDIENCES": AUDIENCE,
            "CRR_GATEWAY_AUTH_CACHE_TTL_SECONDS": "0",
            "CRR_GATEWAY_MAX_WAIT_SECONDS": "2",
            "CRR_GATEWAY_SSE_HEARTBEAT_SECONDS": "0.5",
            "CRR_GATEWAY_RELIST_BACKOFF_INITIAL_SECONDS": "0.2",
            "CRR_GATEWAY_RELIST_BACKOFF_MAX_SECONDS": "2",
        },
    )
    try:
        wait_until("the service to be ready", service.ready, timeout=60)
        with httpx.Client(base_url=service.url, headers=bearer(token), timeout=60) as api:
            yield Gateway(service.url, namespace, callers, role, token_file, api)
    finally:
        service.stop()
        delete_cluster_role(admin, role)


def environment(gateway: Gateway, **overrides: str | None) -> dict[str, str]:
    """The CI job's environment: the URL and the token file, nothing of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRR_GATEWAY_")}
    env.update(CRR_GATEWAY_URL=gateway.url, CRR_GATEWAY_TOKEN_FILE=str(gateway.token_file))
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def crr(gateway: Gateway, *argv: str, **env: str | None) -> Ran:
    done = subprocess.run(
        [str(CRR), *argv],
        env=environment(gateway, **env),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def start_crr(gateway: Gateway, *argv: str, **env: str | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CRR), *argv],
        env=environment(gateway, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> Ran:
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"crr did not finish: {err}")
    return Ran(process.returncode, out, err)


def lines(text: str) -> list[str]:
    return text.splitlines()


def api_json(gateway: Gateway, path: str, **params: str) -> Obj:
    response = gateway.api.get(path, params=params)
    assert response.status_code == 200, response.text
    document: Obj = response.json()
    return document


def restarts_of(kube: k8s.ApiClient, namespace: str, pod: str) -> list[str]:
    return sorted(
        c["metadata"]["name"] for c in crrs_in(kube, namespace) if c["spec"]["podName"] == pod
    )


def name_in(line: str, kind: str) -> str:
    """``restart NS/NAME Succeeded: ...`` -> NAME."""
    word, _, rest = line.partition(" ")
    assert word == kind, line
    return rest.split(" ", 1)[0].split("/", 1)[1]


# ---------------------------------------------------------------- restarts


def test_restart_wait_succeeds_then_a_failed_kill_exits_1_with_kruises_message(
    gateway: Gateway, admin: Rest, kube: k8s.ApiClient
) -> None:
    ns = gateway.namespace
    run_pod(admin, ns, "web-0", ["app", "sidecar"])

    ok = crr(gateway, "restart", f"{ns}/web-0", "--wait", "--reason", "cli e2e")

    assert ok.code == 0, ok.err
    [result] = lines(ok.out)  # the outcome alone on stdout
    name = name_in(result, "restart")
    assert result == f"restart {ns}/{name} Succeeded: pod web-0, app Succeeded, sidecar Succeeded"
    # progress on stderr: the create first, with seconds since the start
    assert f"created restart {ns}/{name} " in ok.err
    assert result not in ok.err
    # the service's warning (in its Warning header and its body alike) is shown once
    warnings = [line for line in lines(ok.err) if line.startswith("warning: ")]
    assert len(warnings) == 1, ok.err
    assert warnings[0].startswith("warning: pod has no KruisePodReady readiness gate")
    assert restarts_of(kube, ns, "web-0") == [name]
    # -o json is the API's document as it sent it
    served = settled(gateway.api, kube, ns, name)
    as_json = crr(gateway, "get", f"{ns}/{name}", "-o", "json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == served
    assert served["reason"] == "cli e2e"
    assert served["requestedBy"] == f"system:serviceaccount:{gateway.callers}:ci"

    k8s.CoreV1Api(kube).patch_namespaced_pod(
        "web-0", ns, {"metadata": {"annotations": {FAIL_KILL: "app"}}}
    )
    failed = crr(gateway, "restart", f"{ns}/web-0", "-c", "app", "--wait")

    assert failed.code == 1, failed.err
    [result] = lines(failed.out)
    second = name_in(result, "restart")
    assert result == (
        f"restart {ns}/{second} Failed (KillError: app: kill container error: "
        f"{INJECTED_KILL_FAILURE})"
        ": pod web-0, app Failed"
    )
    assert result not in failed.err
    failed_json = crr(gateway, "get", f"{ns}/{second}", "-o", "json")
    assert failed_json.code == 1  # get reports the outcome too
    document = json.loads(failed_json.out)
    assert document == settled(gateway.api, kube, ns, second)
    assert (document["result"], document["failureReason"]) == ("Failed", "KillError")
    assert INJECTED_KILL_FAILURE in document["message"]

    # both are listed as finished, with the API's JSON under -o json
    listed = crr(gateway, "list", ns, "--pod", "web-0", "--finished")
    assert listed.code == 0, listed.err
    table = lines(listed.out)
    assert table[0].split() == ["NAME", "POD", "STATE", "CONTAINERS"]
    assert sorted(row.split() for row in table[1:]) == sorted(
        [[name, "web-0", "Succeeded", "app,sidecar"], [second, "web-0", "Failed", "app"]]
    )
    listed_json = crr(gateway, "list", ns, "--pod", "web-0", "--finished", "-o", "json")
    assert listed_json.code == 0, listed_json.err
    api_list = api_json(gateway, restarts_url(ns), pod="web-0", finished="true", limit="500")
    assert json.loads(listed_json.out) == api_list
    assert {item["name"] for item in api_list["items"]} == {name, second}
    # none active: nothing on stdout, so `crr list -o name | xargs` does nothing
    active = crr(gateway, "list", ns, "--pod", "web-0", "--active")
    assert (active.code, active.out) == (0, "")
    assert active.err == f"no restarts in namespace {ns}\n"


def test_refusals_exit_2_with_the_problem_and_a_dry_run_creates_nothing(
    gateway: Gateway, admin: Rest, kube: k8s.ApiClient
) -> None:
    ns = gateway.namespace
    run_pod(admin, ns, "web-1", ["app", "sidecar"])

    typo = crr(gateway, "restart", f"{ns}/web-1", "-c", "typo", "--wait")

    assert (typo.code, typo.out) == (2, "")
    assert typo.err == (
        "crr: 422 Unknown containers: container typo not found in Pod (containers: app, sidecar)\n"
    )
    missing = crr(gateway, "restart", f"{ns}/no-such-pod")
    assert (missing.code, missing.out) == (2, "")
    assert missing.err.startswith("crr: 404 Pod not found: ")
    assert "no-such-pod" in missing.err

    dry = crr(gateway, "restart", f"{ns}/web-1", "-c", "app", "--dry-run")
    assert dry.code == 0, dry.err
    [result] = lines(dry.out)
    assert result.startswith(f"dry run, nothing created: restart {ns}/")
    assert result.endswith(": pod web-1, app")
    dry_json = crr(gateway, "restart", f"{ns}/web-1", "--dry-run", "-o", "json")
    assert dry_json.code == 0, dry_json.err
    planned = json.loads(dry_json.out)
    assert (planned["pod"], planned["containers"], planned["finished"]) == (
        "web-1",
        ["app", "sidecar"],
        False,
    )
    # nothing was created: no CRR, nothing listed, nothing to get
    assert restarts_of(kube, ns, "web-1") == []
    none = crr(gateway, "list", ns, "--pod", "web-1", "-o", "json")
    assert none.code == 0 and json.loads(none.out)["items"] == []
    gone = crr(gateway, "get", f"{ns}/{planned['name']}")
    assert (gone.code, gone.out) == (2, "")
    assert gone.err.startswith("crr: 404 Restart not found: ")


def test_get_wait_and_follow_see_a_restart_to_its_end(
    gateway: Gateway, admin: Rest, kube: k8s.ApiClient
) -> None:
    ns = gateway.namespace
    run_pod(admin, ns, "web-2", ["app"])
    run_pod(admin, ns, "web-3", ["app"])

    created = crr(gateway, "restart", f"{ns}/web-2", "-o", "name")
    assert created.code == 0, created.err
    ref = created.out.strip()  # NS/NAME, for the next commands
    assert ref.startswith(f"{ns}/") and len(lines(created.out)) == 1
    waited = crr(gateway, "get", ref, "--wait")

    assert waited.code == 0, waited.err
    assert lines(waited.out) == [f"restart {ref} Succeeded: pod web-2, app Succeeded"]

    other = crr(gateway, "restart", f"{ns}/web-3", "-o", "name")
    assert other.code == 0, other.err
    followed = crr(gateway, "follow", other.out.strip())

    assert followed.code == 0, followed.err
    shown = lines(followed.out)  # one line per state change, all on stdout, the end last
    assert shown[-1] == f"restart {other.out.strip()} Succeeded: pod web-3, app Succeeded"
    assert len(shown) == len(set(shown)), shown  # no state shown twice
    # on a finished restart, follow -o json prints the last snapshot: the API's document
    name = other.out.strip().split("/", 1)[1]
    served = settled(gateway.api, kube, ns, name)
    again = crr(gateway, "follow", other.out.strip(), "-o", "json")
    assert again.code == 0, again.err
    assert [json.loads(line) for line in lines(again.out)] == [served]


def test_cancel_stops_a_held_up_restart_and_a_waiting_get_exits_1(
    gateway: Gateway, admin: Rest, kube: k8s.ApiClient, simulator: Simulator
) -> None:
    ns = gateway.namespace
    run_pod(admin, ns, "web-4", ["app"])
    simulator.daemon_down = True  # the node never gets to the kill: the restart stays active

    created = crr(gateway, "restart", f"{ns}/web-4", "-o", "name")
    assert created.code == 0, created.err
    ref = created.out.strip()
    name = ref.split("/", 1)[1]
    waiting = start_crr(gateway, "get", ref, "--wait")
    # a second restart of the pod is refused while this one is active: 409, exit 2
    busy = crr(gateway, "restart", f"{ns}/web-4")
    assert (busy.code, busy.out) == (2, "")
    assert busy.err.startswith("crr: 409 A restart is already active on this pod: ")
    assert f"restart {name} is still active on pod web-4" in busy.err

    cancelled = crr(gateway, "cancel", ref)

    assert cancelled.code == 0, cancelled.err
    [line] = lines(cancelled.out)
    assert line.startswith(f"cancelled restart {ref} Failed (Deleted")
    wait_until("the CRR to be deleted", lambda: restarts_of(kube, ns, "web-4") == [])
    ended = finish(waiting)
    assert ended.code == 1, ended.err
    assert lines(ended.out)[-1].startswith(f"restart {ref} Failed (Deleted")


# ---------------------------------------------------------------- rollouts


def test_rollout_wait_over_a_cloneset_shows_progress_on_stderr_and_the_result_on_stdout(
    gateway: Gateway, kube: k8s.ApiClient
) -> None:
    ns = gateway.namespace
    pods = [p["metadata"]["name"] for p in create_cloneset(kube, ns, "shop", 4)]

    ran = crr(
        gateway, "rollout", ns, "cloneset/shop", "-c", "app", "--max-unavailable", "2", "--wait"
    )

    assert ran.code == 0, ran.err
    [result] = lines(ran.out)
    name = name_in(result, "rollout")
    assert result == f"rollout {ns}/{name} Succeeded: CloneSet/shop, 4/4 pods done, 0/2 unavailable"
    # progress: on stderr only, plain lines (not a terminal: no bar, no escape codes)
    assert "\x1b" not in ran.err and "\r" not in ran.err
    progress = lines(ran.err)
    assert f"created rollout {ns}/{name} " in progress[0]
    for pod in pods:
        assert any(f"pod {pod} Succeeded" in line and "pods done" in line for line in progress), (
            pod,
            ran.err,
        )
    assert "pod " not in ran.out
    # the rollout as the API serves it, and as `rollout get -o json` prints it
    served = api_json(gateway, rollouts_url(ns, name))
    got = crr(gateway, "rollout", "get", f"{ns}/{name}", "-o", "json")
    assert got.code == 0, got.err
    assert json.loads(got.out) == served
    assert {p["pod"]: p["state"] for p in served["pods"]} == dict.fromkeys(pods, "Succeeded")
    assert served["resolvedMaxUnavailable"] == 2 and served["containers"] == ["app"]
    assert sorted(c["spec"]["podName"] for c in rollout_crrs(kube, ns, name)) == sorted(pods)
    # in place: the same pods, each app container restarted once
    after = list_pods(kube, ns, "app=shop")
    assert [p["metadata"]["name"] for p in after] == sorted(pods)
    for pod in after:
        counts = {s["name"]: s["restartCount"] for s in pod["status"]["containerStatuses"]}
        assert counts == {"app": 1, "sidecar": 0}, pod["metadata"]["name"]


def test_rollout_pause_resume_cancel_and_get(
    gateway: Gateway, kube: k8s.ApiClient, simulator: Simulator
) -> None:
    ns = gateway.namespace
    run_pods(kube, ns, ["batch-0", "batch-1", "batch-2"], {"app": "batch"}, ["app"])
    simulator.daemon_down = True  # the first pod's restart cannot finish: nothing ends early

    created = crr(gateway, "rollout", ns, "--selector", "app=batch", "-c", "app", "-o", "name")
    assert created.code == 0, created.err
    ref = created.out.strip()
    name = ref.split("/", 1)[1]

    paused = crr(gateway, "rollout", "pause", ref)
    assert paused.code == 0, paused.err
    assert paused.out.startswith(f"paused rollout {ref} ")
    assert api_json(gateway, rollouts_url(ns, name))["paused"] is True
    shown = crr(gateway, "rollout", "get", ref)
    assert shown.code == 0, shown.err  # not finished: get reports no failure
    table = lines(shown.out)
    assert table[0].startswith(f"rollout {ref} ")
    assert table[1].split() == ["POD", "STATE", "RESTART", "MESSAGE"]
    assert [row.split()[0] for row in table[2:]] == ["batch-0", "batch-1", "batch-2"]
    as_json = crr(gateway, "rollout", "get", ref, "-o", "json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == api_json(gateway, rollouts_url(ns, name))

    resumed = crr(gateway, "rollout", "resume", ref)
    assert resumed.code == 0, resumed.err
    assert resumed.out.startswith(f"resumed rollout {ref} ")
    assert api_json(gateway, rollouts_url(ns, name))["paused"] is False
    cancelled = crr(gateway, "rollout", "cancel", ref)
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.startswith(f"cancelled rollout {ref} ")

    simulator.daemon_down = False
    ended = crr(gateway, "rollout", "get", ref, "--wait")

    assert ended.code == 1, ended.err  # Cancelled
    table = lines(ended.out)
    assert table[0].startswith(f"rollout {ref} Cancelled: pods app=batch, ")
    final = api_json(gateway, rollouts_url(ns, name))
    assert final["phase"] == "Cancelled" and final["finished"]
    # the restart that had not started (the node was down) was stopped too: nothing ran
    assert {p["pod"]: p["state"] for p in final["pods"]} == {
        "batch-0": "Skipped",
        "batch-1": "Skipped",
        "batch-2": "Skipped",
    }
    assert [row.split()[:2] for row in table[2:]] == [
        ["batch-0", "Skipped"],
        ["batch-1", "Skipped"],
        ["batch-2", "Skipped"],
    ]
    # a finished rollout cannot be resumed: 409, its detail on stderr, exit 2
    late = crr(gateway, "rollout", "resume", ref)
    assert (late.code, late.out) == (2, "")
    assert late.err == (
        f"crr: 409 The rollout has finished: rollout {name} has finished (Cancelled): "
        "nothing to resume\n"
    )


# ---------------------------------------------------------------- reaching the service


def test_an_unreachable_service_exits_3_and_a_missing_token_exits_2(gateway: Gateway) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"

    unreachable = crr(
        gateway,
        "restart",
        f"{gateway.namespace}/web-0",
        "--idempotency-key",
        "ci-job-42",
        "--wait",
        "--timeout",
        "2",
        CRR_GATEWAY_URL=nobody,
    )

    assert (unreachable.code, unreachable.out) == (3, "")
    assert "connection refused" in unreachable.err, unreachable.err
    # the create may have landed for all it knows: the key that finds out without a second one
    assert "--idempotency-key 'ci-job-42'" in unreachable.err

    anonymous = crr(gateway, "list", gateway.namespace, CRR_GATEWAY_TOKEN_FILE=None)
    assert (anonymous.code, anonymous.out) == (2, "")
    assert anonymous.err.startswith("crr: 401 Unauthenticated")
    assert "hint: no token was sent: set CRR_GATEWAY_TOKEN or CRR_GATEWAY_TOKEN_FILE" in (
        anonymous.err
    )


def test_a_token_file_rotated_mid_wait_is_read_again(
    gateway: Gateway, admin: Rest, kube: k8s.ApiClient, simulator: Simulator, tmp_path: Path
) -> None:
    """The file first holds the token of ``rotating``, which then stops working (its service
    account is deleted, as when a projected token expires); the file meanwhile gets ``ci``'s."""
    ns, callers = gateway.namespace, gateway.callers
    ensure_service_account(admin, callers, "rotating")
    bind(admin, ns, gateway.role, callers, "rotating")
    wait_until("the rotating binding", lambda: may_create(admin, callers, "rotating", ns))
    old = mint(admin, callers, "rotating", [AUDIENCE])
    token_file = tmp_path / "token"
    token_file.write_text(old)
    run_pod(admin, ns, "web-5", ["app"])
    simulator.daemon_down = True

    waiting = start_crr(
        gateway, "restart", f"{ns}/web-5", "--wait", CRR_GATEWAY_TOKEN_FILE=str(token_file)
    )
    [name] = wait_until("the restart to be created", lambda: restarts_of(kube, ns, "web-5"))
    # rotated in place, as the kubelet does: a new file moved over the old one
    fresh = tmp_path / "token.new"
    fresh.write_text(gateway.token_file.read_text())
    fresh.replace(token_file)
    status, answer = admin.call("DELETE", f"/api/v1/namespaces/{callers}/serviceaccounts/rotating")
    assert status == 200, answer
    url = restarts_url(ns, name)
    wait_until(
        "the old token to be refused",
        lambda: gateway.api.get(url, headers=bearer(old)).status_code == 401,
    )
    if waiting.poll() is not None:  # its next poll must use the new token, and it ended
        pytest.fail(f"crr ended before the restart did: {finish(waiting)}")
    simulator.daemon_down = False

    ended = finish(waiting)

    assert ended.code == 0, ended.err
    assert lines(ended.out) == [f"restart {ns}/{name} Succeeded: pod web-5, app Succeeded"]
    served = api_json(gateway, url)
    assert served["requestedBy"] == f"system:serviceaccount:{callers}:rotating"
    # and the next call, a process of its own, reads the new token too
    again = crr(gateway, "get", f"{ns}/{name}", CRR_GATEWAY_TOKEN_FILE=str(token_file))
    assert again.code == 0, again.err
