"""The command line itself: parsing, help, and refusals before anything is sent."""

from __future__ import annotations

import pytest
from crr_client import arguments
from crr_client.cli import main
from crr_client.errors import EXIT_REFUSED

from tests.support.crr_runs import Crr


def parse(*argv: str) -> dict[str, object]:
    return vars(arguments.build().parse_args(arguments.normalise(argv)))


def test_restart_options() -> None:
    args = parse("restart", "demo/web-0", "-c", "a", "--container", "b", "--ordered", "--wait")
    assert args["command"] == "restart"
    assert args["containers"] == ["a", "b"]
    assert args["ordered"] is True and args["wait"] is True
    assert args["timeout"] is None and args["dry_run"] is False


def test_connection_options_go_before_or_after_the_command() -> None:
    before = parse("--url", "http://x", "-o", "json", "get", "demo/r")
    after = parse("get", "demo/r", "--url", "http://x", "-o", "json")
    neither = parse("get", "demo/r")
    assert before["url"] == after["url"] == "http://x"
    assert before["output"] == after["output"] == "json"
    assert neither["url"] is None and neither["output"] == "text"


def test_rollout_verbs_are_commands_of_their_own() -> None:
    assert parse("rollout", "get", "demo/r")["command"] == "rollout get"
    assert parse("-o", "json", "rollout", "pause", "demo/r")["command"] == "rollout pause"
    created = parse("rollout", "demo", "cloneset/shop", "--max-unavailable", "25%")
    assert created["command"] == "rollout"
    assert created["namespace"] == "demo" and created["workload"] == "cloneset/shop"
    named_get = parse("rollout", "create", "get", "deployment/web")
    assert named_get["namespace"] == "get"


@pytest.mark.parametrize(
    "argv",
    [
        ["restart"],
        ["restart", "demo/web-0", "--deadline", "0"],
        ["restart", "demo/web-0", "--timeout", "-1", "--wait"],
        ["list", "demo", "--finished", "--active"],
        ["rollout", "get"],
        ["frobnicate"],
    ],
)
def test_argparse_refusals_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == EXIT_REFUSED
    assert "usage: crr" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["restart", "demo/web-0", "--timeout", "5"], "--timeout applies with --wait"),
        (["restart", "web-0"], "expected NS/POD"),
        (["restart", "demo/web-0", "--idempotency-key", "caf\u00e9"], "printable ASCII"),
        (["get", "demo/x", "--url", "ftp://x"], "must start with http:// or https://"),
        (["get", "demo/x", "--url", "http://x:port"], "invalid port"),
    ],
)
def test_usage_errors_exit_2_with_a_message(crr: Crr, argv: list[str], message: str) -> None:
    outcome = (
        crr(None, *argv, "--url", "http://127.0.0.1:9") if "--url" not in argv else crr(None, *argv)
    )
    assert outcome.code == EXIT_REFUSED
    assert message in outcome.err


def test_without_a_url_it_says_which_variable_to_set(crr: Crr) -> None:
    outcome = crr(None, "get", "demo/x")
    assert outcome.code == EXIT_REFUSED
    assert "set CRR_GATEWAY_URL or pass --url" in outcome.err


def test_help_documents_exit_codes_environment_and_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for needle in (
        "exit codes:",
        "0    succeeded (or accepted, without --wait)",
        "1    the restart or rollout ended Failed or Cancelled",
        "2    the service refused the request",
        "3    the service could not be reached, --timeout passed, or it answered 5xx",
        "CRR_GATEWAY_TOKEN_FILE",
        "CRR_GATEWAY_CA",
    ):
        assert needle in text
    with pytest.raises(SystemExit):
        main(["rollout", "--help"])
    rollout_help = capsys.readouterr().out
    assert "statefulset.apps.kruise.io/db" in rollout_help
    assert "exit codes:" in rollout_help


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from crr_client import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"crr {__version__}\n"
