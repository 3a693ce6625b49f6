"""``crr restart|get|list|cancel`` as a CI job sees them: requests sent, what lands on stdout
and stderr, and the exit code."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from crr_client.errors import EXIT_ENDED_BADLY, EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE

from tests.support.crr_runs import Crr
from tests.support.fake_gateway import FakeGateway, Reply, Script, Seen, restart_doc

Start = Callable[[Script], FakeGateway]
RESTARTS = "/v1/namespaces/demo/restarts"
RESTART = f"{RESTARTS}/web-0-x7k2p"

PENDING = restart_doc(rv="1")
RECREATING = restart_doc(
    rv="2", phase="Recreating", states=[("nginx", "Recreating"), ("sidecar", "Pending")]
)
SUCCEEDED = restart_doc(
    rv="3",
    phase="Completed",
    result="Succeeded",
    states=[("nginx", "Succeeded"), ("sidecar", "Succeeded")],
)
FAILED = restart_doc(
    rv="3",
    phase="Completed",
    result="Failed",
    failure="KillError",
    message="kill container nginx failed",
    states=[("nginx", "Failed"), ("sidecar", "Pending")],
)


def lifecycle(*snapshots: dict[str, object], created: int = 201) -> Script:
    """POST creates the first snapshot; each GET answers the next one, then the last again."""
    later = itertools.chain(snapshots[1:], itertools.repeat(snapshots[-1]))

    def script(seen: Seen) -> Reply:
        if seen.method == "POST":
            return Reply(created, snapshots[0], {"Location": RESTART})
        return Reply(200, next(later))

    return script


def test_a_restart_is_created_with_what_the_command_line_says(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(PENDING))
    outcome = crr(
        fake,
        "restart",
        "demo/web-0",
        "-c",
        "nginx",
        "-c",
        "sidecar",
        "--ordered",
        "--reason",
        "config reload",
        "--deadline",
        "120",
        "--idempotency-key",
        "ci-run-7",
    )
    assert outcome.code == EXIT_OK
    (post,) = fake.requests("POST")
    assert post.path == RESTARTS
    assert post.json() == {
        "pod": "web-0",
        "containers": ["nginx", "sidecar"],
        "orderedRecreate": True,
        "reason": "config reload",
        "activeDeadlineSeconds": 120,
    }
    assert post.headers["idempotency-key"] == "ci-run-7"
    assert post.headers["authorization"] == "Bearer t0ken"
    assert post.headers["content-type"] == "application/json"
    assert outcome.out == "created restart demo/web-0-x7k2p Pending: pod web-0, nginx, sidecar\n"


def test_every_create_carries_a_fresh_idempotency_key(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(PENDING))
    crr(fake, "restart", "demo/web-0")
    crr(fake, "restart", "demo/web-0")
    first, second = (seen.headers["idempotency-key"] for seen in fake.requests("POST"))
    assert first != second and first.startswith("crr-")
    assert fake.requests("POST")[0].json() == {"pod": "web-0"}  # the service's defaults


def test_a_replayed_create_says_it_found_the_earlier_restart(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(PENDING, created=200))
    outcome = crr(fake, "restart", "demo/web-0", "--idempotency-key", "k")
    assert outcome.out.startswith("found (same Idempotency-Key) restart demo/web-0-x7k2p")


def test_wait_long_polls_until_it_succeeded(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(PENDING, RECREATING, SUCCEEDED))
    outcome = crr(fake, "restart", "demo/web-0", "--wait")
    assert outcome.code == EXIT_OK
    polls = fake.requests("GET")
    assert [seen.path for seen in polls] == [RESTART, RESTART]
    assert [seen.query["resourceVersion"] for seen in polls] == ["1", "2"]
    assert all(int(seen.query["wait"]) >= 1 for seen in polls)
    assert outcome.out == (
        "restart demo/web-0-x7k2p Succeeded: pod web-0, nginx Succeeded, sidecar Succeeded\n"
    )
    progress = outcome.err.splitlines()
    assert progress[0].endswith(
        "created restart demo/web-0-x7k2p Pending: pod web-0, nginx, sidecar"
    )
    assert progress[1].endswith("Recreating: pod web-0, nginx Recreating, sidecar Pending")
    assert "\x1b" not in outcome.out + outcome.err  # not a terminal: no escape codes


def test_wait_exits_1_when_the_restart_failed(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(PENDING, FAILED))
    outcome = crr(fake, "restart", "demo/web-0", "--wait")
    assert outcome.code == EXIT_ENDED_BADLY
    assert outcome.out == (
        "restart demo/web-0-x7k2p Failed (KillError: kill container nginx failed): "
        "pod web-0, nginx Failed, sidecar Pending\n"
    )


def test_wait_gives_up_at_the_timeout_with_exit_3(gateway: Start, crr: Crr) -> None:
    fake = gateway(lifecycle(PENDING, RECREATING))  # never finishes
    outcome = crr(fake, "restart", "demo/web-0", "--wait", "--timeout", "1")
    assert outcome.code == EXIT_UNAVAILABLE
    assert "timed out: restart demo/web-0-x7k2p is still Recreating" in outcome.err
    assert outcome.out == ""


def test_json_output_is_the_services_json_as_sent(gateway: Start, crr: Crr) -> None:
    sent = json.dumps(SUCCEEDED, indent=3).encode()  # an unusual layout, to prove it is untouched

    def script(seen: Seen) -> Reply:
        if seen.method == "POST":
            return Reply(201, PENDING)
        return Reply(200, sent)

    outcome = crr(gateway(script), "restart", "demo/web-0", "--wait", "-o", "json")
    assert outcome.code == EXIT_OK
    assert outcome.out == sent.decode() + "\n"


def test_name_output_is_ns_slash_name(gateway: Start, crr: Crr) -> None:
    outcome = crr(gateway(lifecycle(PENDING)), "-o", "name", "restart", "demo/web-0")
    assert outcome.out == "demo/web-0-x7k2p\n"


def test_a_refusal_prints_the_detail_and_the_valid_containers(gateway: Start, crr: Crr) -> None:
    refusal = Reply.problem(
        422,
        "unknown containers in pod web-0: typo",
        unknownContainers=["typo"],
        validContainers=["nginx", "sidecar"],
    )
    outcome = crr(gateway(lambda _seen: refusal), "restart", "demo/web-0", "-c", "typo")
    assert outcome.code == EXIT_REFUSED
    assert outcome.out == ""
    assert "422 Problem: unknown containers in pod web-0: typo" in outcome.err
    assert "(valid containers: nginx, sidecar)" in outcome.err


def test_valid_containers_the_detail_already_lists_are_not_repeated(
    gateway: Start, crr: Crr
) -> None:
    detail = "container typo not found in Pod (containers: nginx, sidecar)"
    refusal = Reply.problem(422, detail, validContainers=["nginx", "sidecar"])
    outcome = crr(gateway(lambda _seen: refusal), "restart", "demo/web-0", "-c", "typo")
    assert outcome.err == f"crr: 422 Problem: {detail}\n"


def test_a_401_without_a_token_says_how_to_give_one(gateway: Start, crr: Crr) -> None:
    fake = gateway(lambda _seen: Reply.problem(401, "a bearer token is required"))
    outcome = crr(fake, "get", "demo/web-0-x7k2p", token=None)
    assert outcome.code == EXIT_REFUSED
    assert "authorization" not in fake.requests()[0].headers
    assert "hint: no token was sent: set CRR_GATEWAY_TOKEN or CRR_GATEWAY_TOKEN_FILE" in outcome.err


def test_a_5xx_exits_3(gateway: Start, crr: Crr) -> None:
    outcome = crr(gateway(lambda _seen: Reply.problem(500, "boom")), "get", "demo/x")
    assert outcome.code == EXIT_UNAVAILABLE
    assert "500 Problem: boom" in outcome.err


def test_an_unreachable_create_tells_how_to_find_out_whether_it_landed(
    gateway: Start, crr: Crr
) -> None:
    fake = gateway(lambda _seen: Reply(504, {"detail": "the apiserver did not answer"}))
    fake.__exit__(None, None, None)
    outcome = crr(
        fake, "restart", "demo/web-0", "--idempotency-key", "k-1", "--timeout", "0.5", "--wait"
    )
    assert outcome.code == EXIT_UNAVAILABLE
    assert "--idempotency-key 'k-1' finds out without making a second one" in outcome.err


def test_get_exits_by_the_outcome_and_can_wait(gateway: Start, crr: Crr) -> None:
    assert crr(gateway(lambda _s: Reply(200, FAILED)), "get", "demo/web-0-x7k2p").code == 1
    assert crr(gateway(lambda _s: Reply(200, RECREATING)), "get", "demo/web-0-x7k2p").code == 0
    waited = crr(gateway(lifecycle(RECREATING, RECREATING, SUCCEEDED)), "get", "demo/x", "--wait")
    assert waited.code == EXIT_OK
    assert "Succeeded" in waited.out


def test_a_restart_deleted_while_waiting_ends_with_exit_1(gateway: Start, crr: Crr) -> None:
    answers = iter([Reply(200, RECREATING), Reply.problem(404, "no such restart")])
    outcome = crr(gateway(lambda _s: next(answers)), "get", "demo/web-0-x7k2p", "--wait")
    assert outcome.code == EXIT_ENDED_BADLY
    assert "was deleted before it finished" in outcome.err


def test_list_follows_pages_and_filters(gateway: Start, crr: Crr) -> None:
    first = {"items": [SUCCEEDED], "continue": "abc"}
    second = {"items": [restart_doc("web-0-b2", rv="9", phase="Recreating")], "continue": None}

    def script(seen: Seen) -> Reply:
        return Reply(200, second if seen.query.get("continue") == "abc" else first)

    fake = gateway(script)
    outcome = crr(fake, "list", "demo", "--pod", "web-0", "--finished")
    assert outcome.code == EXIT_OK
    assert [seen.query for seen in fake.requests()] == [
        {"limit": "500", "pod": "web-0", "finished": "true"},
        {"limit": "500", "pod": "web-0", "finished": "true", "continue": "abc"},
    ]
    assert outcome.out.splitlines() == [
        "NAME         POD    STATE       CONTAINERS",
        "web-0-x7k2p  web-0  Succeeded   nginx,sidecar",
        "web-0-b2     web-0  Recreating  nginx,sidecar",
    ]
    as_json = json.loads(crr(fake, "list", "demo", "-o", "json").out)
    assert [item["name"] for item in as_json["items"]] == ["web-0-x7k2p", "web-0-b2"]
    assert crr(fake, "list", "demo", "--active").code == EXIT_OK
    assert fake.requests()[-1].query["finished"] == "false"


def test_cancel_deletes_once_and_shows_the_last_state(gateway: Start, crr: Crr) -> None:
    fake = gateway(lambda _seen: Reply(200, RECREATING))
    outcome = crr(fake, "cancel", "demo/web-0-x7k2p")
    assert outcome.code == EXIT_OK
    assert [(seen.method, seen.path) for seen in fake.requests()] == [("DELETE", RESTART)]
    assert outcome.out.startswith("cancelled restart demo/web-0-x7k2p Recreating")


def test_a_cancel_whose_answer_is_lost_is_not_repeated(gateway: Start, crr: Crr) -> None:
    fake = gateway(lambda _seen: Reply(drop=True))
    outcome = crr(fake, "cancel", "demo/web-0-x7k2p")
    assert outcome.code == EXIT_UNAVAILABLE
    assert len(fake.requests()) == 1
    assert "it may have reached the service" in outcome.err


def test_the_services_warnings_reach_stderr_even_with_quiet(gateway: Start, crr: Crr) -> None:
    warned = {**PENDING, "warnings": ["container sidecar has no readiness probe"]}
    outcome = crr(gateway(lifecycle(warned)), "restart", "demo/web-0", "-q")
    assert outcome.err == "warning: container sidecar has no readiness probe\n"


def test_a_warning_in_the_header_and_the_body_is_shown_once(gateway: Start, crr: Crr) -> None:
    """As the service sends a create's warnings: ``Warning: 299 - "..."`` and ``warnings``."""
    text = 'pod has no "KruisePodReady" gate'
    header = '299 - "pod has no \\"KruisePodReady\\" gate"'

    def script(seen: Seen) -> Reply:
        return Reply(201, {**PENDING, "warnings": [text]}, {"Location": RESTART, "Warning": header})

    outcome = crr(gateway(script), "restart", "demo/web-0")
    assert outcome.err == f"warning: {text}\n"
    assert outcome.out.startswith("created restart demo/web-0-x7k2p")
