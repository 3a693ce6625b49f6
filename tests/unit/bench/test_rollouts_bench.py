"""The rollout section's pure parts on synthetic input: audit lines counted by client and
time, readiness as an endpoint sees it, the restart check and the report's verdicts. The
section itself runs only in ``make bench``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bench.audit import POLICY, AuditLog, count_requests
from bench.plan import FULL, QUICK
from bench.readiness import Window, pod_is_ready
from bench.restart_chain import Chain, chain
from bench.rollouts import WayRun, check_restarts, cloneset, render

SERVICE = "crr-gateway/0.1"
KUBECTL = "kubectl.1.32/v1.32.5 (linux/amd64) kubernetes/abc"


def event(agent: str, verb: str, received: str, resource: str | None = None, **extra: str) -> str:
    line: dict[str, object] = {
        "stage": extra.pop("stage", "ResponseComplete"),
        "userAgent": agent,
        "verb": verb,
        "requestReceivedTimestamp": received,
    }
    if resource is not None:
        line["objectRef"] = {"resource": resource, **extra}
    return json.dumps(line)


def at(second: int) -> datetime:
    return datetime(2026, 11, 29, 14, 0, second, tzinfo=UTC)


LINES = [
    event(SERVICE, "create", "2026-11-29T14:00:01.000000Z", "containerrecreaterequests"),
    event(SERVICE, "update", "2026-11-29T14:00:02.500000Z", "restartrollouts"),
    event(SERVICE, "update", "2026-11-29T14:00:03.000000Z", "restartrollouts"),
    event(SERVICE, "patch", "2026-11-29T14:00:03.000000Z", "pods", subresource="status"),
    # a watch the service opened long before: logged when it ends, counted by when it began
    event(SERVICE, "watch", "2026-11-29T13:00:00.000000Z", "pods"),
    event(SERVICE, "create", "2026-11-29T14:00:09.000000Z", "events"),  # after the interval
    event(SERVICE, "create", "2026-11-29T14:00:02.000000Z", "events", stage="ResponseStarted"),
    event(KUBECTL, "get", "2026-11-29T14:00:02.000000Z"),  # discovery: no objectRef
    event("kruise-manager/v1.9.0", "update", "2026-11-29T14:00:02.000000Z", "pods"),
    "",
]


def test_requests_are_counted_by_client_kind_and_time_received() -> None:
    service = count_requests(LINES, lambda a: a.startswith("crr-gateway/"), at(0), at(5))
    assert service == {
        ("create", "containerrecreaterequests", ""): 1,
        ("update", "restartrollouts", ""): 2,
        ("patch", "pods", "status"): 1,
    }
    kubectl = count_requests(LINES, lambda a: a.startswith("kubectl"), at(0), at(5))
    assert kubectl == {("get", "", ""): 1}
    assert count_requests(LINES, lambda a: True, at(4), at(5)) == {}


def test_the_audit_log_is_read_from_the_last_mark_and_only_whole_lines(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    args = log.apiserver_args()
    assert f"--audit-log-path={log.path}" in args
    assert (tmp_path / "audit-policy.yaml").read_text() == POLICY
    log.path.write_text(LINES[0] + "\n")
    log.skip_to_end()
    log.path.write_text(LINES[0] + "\n" + LINES[1] + "\n" + LINES[2][:20])  # one half-written
    everything = log.requests(lambda _a: True, at(0), at(59))
    assert everything == {("update", "restartrollouts", ""): 1}


def pod(ready: str | None, deleting: bool = False) -> dict[str, object]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    meta = {"name": "p", "deletionTimestamp": "2026-11-29T14:00:00Z"} if deleting else {}
    return {"metadata": meta, "status": {"conditions": conditions}}


def test_ready_as_an_endpoint_sees_it() -> None:
    assert pod_is_ready(pod("True"))
    assert not pod_is_ready(pod("False"))
    assert not pod_is_ready(pod(None))
    assert not pod_is_ready(pod("True", deleting=True))


def test_each_pod_must_restart_app_once_and_nothing_else() -> None:
    before = {"a": {"app": ("c://1", 0), "sidecar": ("c://2", 0)}}
    good = {"a": {"app": ("c://3", 1), "sidecar": ("c://2", 0)}}
    assert check_restarts(before, good).startswith("each of 1 pods")
    twice = {"a": {"app": ("c://4", 2), "sidecar": ("c://2", 0)}}
    assert check_restarts(before, twice) == "NOT as asked: a/app restarted 2x"
    sidecar = {"a": {"app": ("c://3", 1), "sidecar": ("c://5", 1)}}
    assert check_restarts(before, sidecar) == "NOT as asked: a/sidecar restarted 1x"
    assert "pods changed" in check_restarts(before, {})


def test_the_cloneset_has_the_readiness_gate_and_a_short_grace_period() -> None:
    spec = cloneset("shop-x", 50)["spec"]
    assert spec["replicas"] == 50 and spec["selector"] == {"matchLabels": {"app": "shop-x"}}
    pod_spec = spec["template"]["spec"]
    assert pod_spec["readinessGates"] == [{"conditionType": "KruisePodReady"}]
    assert pod_spec["terminationGracePeriodSeconds"] == 2
    assert [c["name"] for c in pod_spec["containers"]] == ["app", "sidecar"]


def way(label: str, seconds: float, peak: int, requests: float) -> WayRun:
    return WayRun(
        label=label,
        pods=50,
        seconds=seconds,
        per_pod=[] if label == "rollout" else [seconds / 50] * 50,
        peak_unavailable=peak,
        went_unready=50,
        requests={("create", "containerrecreaterequests", ""): requests * 50},
        client="the service",
        restarts_ok="each of 50 pods: `app` once, `sidecar` never",
        load=(1.0, 1.5),
        chain=Chain(
            stages={"not Ready → killed": 2.5, "created → Ready": seconds / 10},
            to_next=0.05,
            to_next_label="",
        ),
        in_use=0.9,
    )


def test_the_report_states_each_target_and_whether_it_was_met() -> None:
    assert (FULL.rollout_pods, FULL.rollout_max_unavailable) == (50, 5)
    assert QUICK.rollout_pods < FULL.rollout_pods
    met = render(
        [way("rollout", 40, 5, 2.5), way("one", 200, 1, 2), way("kubectl", 300, 1, 20)], FULL, []
    )
    assert "| rollout | 50 | 40.0 | 1.00x | - | 5 | 2.50 (the service) | 1.0 / 1.5 |" in met
    assert "| one | 50 | 200.0 | 5.00x | 4.00 | 1 |" in met
    assert "5.00x faster (target at least 4x: met)" in met
    assert "(never over budget; budget used)" in met
    assert "2.50 (target at most 3: met)" in met
    missed = render([way("rollout", 100, 6, 3.5), way("one", 200, 1, 2)], FULL, [])
    assert "2.00x faster (target at least 4x: NOT met)" in missed
    assert "OVER BUDGET" in missed and "3.50 (target at most 3: NOT met)" in missed


def test_the_report_says_where_each_restarts_time_went() -> None:
    report = render([way("rollout", 40, 5, 2.5), way("one", 200, 1, 2)], FULL, [])
    assert "| stage | rollout | one |" in report
    assert "| not Ready → killed | 2.50 | 2.50 |" in report
    assert "| created → Ready | 4.00 | 20.00 |" in report
    assert "| created → not Ready | n/a | n/a |" in report
    assert "| restarts under way, time-averaged, / allowed at once | 0.90 | 0.90 |" in report


def test_the_stages_are_medians_over_the_pods_and_the_gap_runs_to_the_next_create() -> None:
    seen = {
        "a": {"created": 0.0, "grace": 0.1, "killed": 2.5, "running": 3.0, "completed": 3.1},
        "b": {"created": 0.0, "grace": 0.3, "killed": 2.9, "running": 3.6, "completed": 3.8},
        "c": {"created": 3.4, "grace": 3.5, "killed": 6.0, "running": 6.5, "completed": 6.6},
    }
    window = Window(
        peak=2,
        unready_at={"a": 0.1, "b": 0.3, "c": 3.5},
        ready_again_at={"a": 3.2, "b": 3.9, "c": 6.7},
    )
    rollout = chain(seen, window, next_after="ready")
    stages = {label: round(value, 6) for label, value in rollout.stages.items()}
    assert stages["created → not Ready"] == 0.1  # median of 0.1, 0.3, 0.1
    assert stages["not Ready → killed"] == 2.5  # of 2.4, 2.6, 2.5
    assert stages["Completed → Ready"] == 0.1
    assert stages["created → Ready"] == 3.3  # of 3.2, 3.9, 3.3
    # a Ready again at 3.2 → c created at 3.4; b's and c's returns had no create after them
    assert round(rollout.to_next or 0, 6) == 0.2
    one = chain(seen, window, next_after="completed")
    assert round(one.to_next or 0, 6) == 0.3  # a Completed at 3.1 → c created at 3.4
