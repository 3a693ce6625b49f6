"""``crr rollout`` against the rollout API contract (docs/rollouts.md): the body sent, the
progress shown, and the exit code by phase."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest
from crr_client.errors import EXIT_ENDED_BADLY, EXIT_OK, EXIT_REFUSED

from tests.support.crr_runs import Crr
from tests.support.fake_gateway import FakeGateway, Reply, Script, Seen, rollout_doc

Start = Callable[[Script], FakeGateway]
ROLLOUTS = "/v1/namespaces/demo/rollouts"
ROLLOUT = f"{ROLLOUTS}/shop-7x2k"

WAITING = rollout_doc(rv="1")
FIRST = rollout_doc(rv="2", pods=[("shop-a", "Restarting"), ("shop-b", "Waiting")], unavailable=1)
SECOND = rollout_doc(
    rv="3", pods=[("shop-a", "Succeeded"), ("shop-b", "Restarting")], unavailable=1
)
DONE = rollout_doc(
    rv="4", phase="Succeeded", pods=[("shop-a", "Succeeded"), ("shop-b", "Succeeded")]
)


def lifecycle(*snapshots: dict[str, object]) -> Script:
    later = itertools.chain(snapshots[1:], itertools.repeat(snapshots[-1]))

    def script(seen: Seen) -> Reply:
        if seen.method == "POST":
            return Reply(201, snapshots[0], {"Location": ROLLOUT})
        return Reply(200, next(later))

    return script


def test_a_workload_rollout_sends_the_target_budget_and_containers(
    gateway: Start, crr: Crr
) -> None:
    fake = gateway(lifecycle(WAITING))
    outcome = crr(
        fake,
        "rollout",
        "demo",
        "statefulset.apps.kruise.io/db",
        "-c",
        "app",
        "--max-unavailable",
        "25%",
        "--reason",
        "rotate certs",
    )
    assert outcome.code == EXIT_OK
    (post,) = fake.requests("POST")
    assert post.path == ROLLOUTS
    assert post.json() == {
        "target": {"kind": "StatefulSet", "name": "db", "apiVersion": "apps.kruise.io/v1beta1"},
        "containers": ["app"],
        "maxUnavailable": "25%",
        "reason": "rotate certs",
    }
    assert post.headers["idempotency-key"].startswith("crr-")
    assert outcome.out.startswith("created rollout demo/shop-7x2k Progressing: CloneSet/shop")


def test_a_selector_rollout_sends_a_label_selector(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(WAITING))
    crr(fake, "rollout", "demo", "--selector", "app=shop,tier!=db", "--max-unavailable", "2")
    assert fake.requests("POST")[0].json() == {
        "selector": {
            "matchLabels": {"app": "shop"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
        },
        "maxUnavailable": 2,
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["rollout", "demo"],
        ["rollout", "demo", "cloneset/shop", "--selector", "app=shop"],
        ["rollout", "demo", "pod/shop"],
        ["rollout", "demo", "cloneset/shop", "--max-unavailable", "0"],
        ["rollout", "demo", "--selector", ""],
    ],
)
def test_rollouts_the_command_line_cannot_mean_are_refused_before_sending(
    gateway: Start, crr: Crr, argv: list[str]
) -> None:
    fake = gateway(lifecycle(WAITING))
    outcome = crr(fake, *argv)
    assert outcome.code == EXIT_REFUSED
    assert fake.requests() == []


def test_wait_shows_pods_as_they_change_and_exits_0(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(WAITING, FIRST, SECOND, DONE))
    outcome = crr(fake, "rollout", "demo", "cloneset/shop", "--wait")
    assert outcome.code == EXIT_OK
    assert [seen.query["resourceVersion"] for seen in fake.requests("GET")] == ["1", "2", "3"]
    progress = [re.sub(r"^ *[0-9.]+s  ", "", line) for line in outcome.err.splitlines()]
    assert progress == [
        "created rollout demo/shop-7x2k Progressing: CloneSet/shop, 0/2 pods done, 0/1 unavailable",
        "pod shop-a Restarting  [0/2 pods done, 1/1 unavailable]",
        "pod shop-a Succeeded  [1/2 pods done, 1/1 unavailable]",
        "pod shop-b Restarting  [1/2 pods done, 1/1 unavailable]",
        "pod shop-b Succeeded  [2/2 pods done, 0/1 unavailable]",
    ]
    assert outcome.out == (
        "rollout demo/shop-7x2k Succeeded: CloneSet/shop, 2/2 pods done, 0/1 unavailable\n"
    )
    assert "\x1b" not in outcome.err and "\r" not in outcome.err


@pytest.mark.parametrize("phase", ["Failed", "Cancelled"])
def test_wait_exits_1_when_the_rollout_failed_or_was_cancelled(
    gateway: Start, crr: Crr, phase: str
) -> None:
    end = rollout_doc(rv="9", phase=phase, pods=[("shop-a", "Failed"), ("shop-b", "Waiting")])
    outcome = crr(gateway(lifecycle(WAITING, end)), "rollout", "demo", "clone/shop", "--wait")
    assert outcome.code == EXIT_ENDED_BADLY
    assert outcome.out.startswith(f"rollout demo/shop-7x2k {phase}:")


def test_a_pause_is_announced_with_how_to_go_on(gateway: Start, crr: Crr) -> None:
    paused = rollout_doc(rv="2", phase="Paused", message="pod shop-a failed")
    fake = gateway(lifecycle(WAITING, paused, DONE))
    outcome = crr(fake, "rollout", "demo", "clone/shop", "--wait")
    assert outcome.code == EXIT_OK
    assert "Paused: CloneSet/shop" in outcome.err
    assert "`crr rollout resume demo/shop-7x2k` goes on" in outcome.err


def test_dry_run_shows_the_plan_and_creates_nothing(gateway: Start, crr: Crr) -> None:
    fake = gateway(lambda _seen: Reply(200, WAITING))
    outcome = crr(fake, "rollout", "demo", "cloneset/shop", "--dry-run")
    assert outcome.code == EXIT_OK
    assert fake.requests()[0].query == {"dryRun": "true"}
    assert outcome.out.startswith("dry run, nothing created: rollout demo/shop-7x2k")
    assert "shop-a  Waiting" in outcome.out


@pytest.mark.parametrize("verb", ["pause", "resume", "cancel"])
def test_actions_post_to_their_path(gateway: Start, crr: Crr, verb: str) -> None:
    fake = gateway(lambda _seen: Reply(200, FIRST))
    outcome = crr(fake, "rollout", verb, "demo/shop-7x2k")
    assert outcome.code == EXIT_OK
    assert [(s.method, s.path) for s in fake.requests()] == [("POST", f"{ROLLOUT}/{verb}")]
    assert outcome.out.split(" ", 1)[1].startswith("rollout demo/shop-7x2k Progressing")


def test_an_action_on_a_finished_rollout_is_refused_with_its_detail(
    gateway: Start, crr: Crr
) -> None:
    fake = gateway(lambda _seen: Reply.problem(409, "rollout shop-7x2k has finished"))
    outcome = crr(fake, "rollout", "pause", "demo/shop-7x2k")
    assert outcome.code == EXIT_REFUSED
    assert "409 Problem: rollout shop-7x2k has finished" in outcome.err


def test_rollout_get_shows_each_pod_and_can_wait(gateway: Start, crr: Crr) -> None:
    fake = gateway(lambda _seen: Reply(200, SECOND))
    outcome = crr(fake, "rollout", "get", "demo/shop-7x2k")
    assert outcome.code == EXIT_OK
    assert outcome.out.splitlines()[1:] == [
        "POD     STATE       RESTART  MESSAGE",
        "shop-a  Succeeded   -",
        "shop-b  Restarting  -",
    ]
    answers = iter([Reply(200, SECOND), Reply(200, DONE)])
    fake = gateway(lambda _seen: next(answers))
    waited = crr(fake, "rollout", "get", "demo/shop-7x2k", "--wait")
    assert waited.code == EXIT_OK
    assert waited.out.startswith("rollout demo/shop-7x2k Succeeded")
    assert fake.requests()[1].query == {"wait": "30", "resourceVersion": "3"}
