"""The command line: one argparse parser per command, and the help people read."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from crr_client import __version__
from crr_client.specs import KIND_HELP

ROLLOUT_VERBS = ("create", "get", "pause", "resume", "cancel")

ENVIRONMENT = """\
environment:
  CRR_GATEWAY_URL         the service, e.g. https://crr-gateway.crr-gateway.svc (or --url)
  CRR_GATEWAY_TOKEN       a bearer token (or --token)
  CRR_GATEWAY_TOKEN_FILE  a file holding the token, read again on every request, so a
                          projected service-account token that rotates just works
                          (or --token-file)
  CRR_GATEWAY_CA          PEM file of the CA that signed the service's certificate (or --ca)
  NO_COLOR                no colours, even on a terminal"""

EXIT_CODES = """\
exit codes:
  0    succeeded (or accepted, without --wait)
  1    the restart or rollout ended Failed or Cancelled
  2    the service refused the request (4xx; its detail is printed, e.g. the valid
       container names), or the command line or configuration is not valid
  3    the service could not be reached, --timeout passed, or it answered 5xx
  130  interrupted (Ctrl-C)"""

RETRIES = """\
Creates carry an Idempotency-Key (a random one unless --idempotency-key is given), so a create
retried after a network error or a 504 never makes a second restart. 429, 503 and 504 are
retried, honouring Retry-After, for up to 6 attempts and 60 seconds."""

OUTPUT = """\
Results go to stdout, progress and errors to stderr. -o json prints the service's JSON as it
sent it (follow: one document per line); -o name prints NS/NAME."""

DESCRIPTION = f"""\
crr {__version__}: restart containers in place through crr-gateway (OpenKruise
ContainerRecreateRequests), and roll restarts over a workload's pods, from a terminal or a CI job.

examples:
  crr restart demo/web-0 --wait                     every container of pod web-0; wait for it
  crr restart demo/web-0 -c sidecar --ordered --reason "config reload" --wait --timeout 120
  crr restart demo/web-0 -c nginx --dry-run         validate only; create nothing
  crr get demo/web-0-x7k2p --wait                   wait for a restart made earlier
  crr list demo --pod web-0 --active
  crr follow demo/web-0-x7k2p                       every state change as it happens
  crr cancel demo/web-0-x7k2p
  crr rollout demo cloneset/shop --max-unavailable 25% --wait
  crr rollout demo --selector app=shop,tier!=db -c app --wait
  crr rollout get demo/shop-7x2k
  crr rollout pause demo/shop-7x2k

{OUTPUT}

{RETRIES}

{ENVIRONMENT}

{EXIT_CODES}"""


def build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crr",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crr {__version__}")
    _common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    restart = _command(commands, "restart", "restart containers of a pod in place")
    restart.add_argument("target", metavar="NS/POD", help="namespace and pod")
    _containers(restart, "a container to restart (repeatable; default: every container)")
    restart.add_argument(
        "--ordered", action="store_true", help="recreate one container after the other"
    )
    restart.add_argument("--reason", help="why; recorded on the restart and in the audit log")
    restart.add_argument(
        "--deadline",
        type=_positive_int,
        metavar="SECONDS",
        help="the restart fails if not done this long after creation (activeDeadlineSeconds)",
    )
    _create_options(restart, "restart")
    _wait_options(restart)

    get = _command(commands, "get", "show a restart")
    get.add_argument("target", metavar="NS/NAME", help="namespace and restart name")
    _wait_options(get)

    listing = _command(commands, "list", "list the restarts of a namespace")
    listing.add_argument("namespace", metavar="NS")
    listing.add_argument("--pod", help="only this pod's restarts")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--finished", action="store_true", help="only finished restarts")
    which.add_argument("--active", action="store_true", help="only unfinished restarts")

    follow = _command(commands, "follow", "print a restart's state changes until it finishes")
    follow.add_argument("target", metavar="NS/NAME", help="namespace and restart name")
    follow.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="give up")

    cancel = _command(commands, "cancel", "stop what has not run yet of a restart")
    cancel.add_argument("target", metavar="NS/NAME", help="namespace and restart name")

    rollout = _command(
        commands,
        "rollout",
        "restart pods of a workload, or pods matching a selector, a few at a time",
        aliases=["rollout create"],
        extra=KIND_HELP
        + "\n\nWith --wait, a rollout that pauses on a failure stays Paused until someone runs\n"
        "`crr rollout resume` or `crr rollout cancel`; bound the wait with --timeout.\n"
        "A namespace named like a verb (get, pause, ...): `crr rollout create NS ...`.",
    )
    rollout.add_argument("namespace", metavar="NS")
    rollout.add_argument("workload", nargs="?", metavar="KIND/NAME", help="the workload")
    rollout.add_argument(
        "-l",
        "--selector",
        metavar="k=v[,k=v]",
        help="pods matching this label selector (kubectl syntax: =, !=, in, notin, !k)",
    )
    _containers(rollout, "a container to restart in each pod (repeatable; default: all)")
    rollout.add_argument(
        "--max-unavailable",
        metavar="N|P%",
        help="pods unavailable at once, a number or a percentage of the pods (default: 1)",
    )
    rollout.add_argument("--reason", help="why; recorded on the rollout and its restarts")
    _create_options(rollout, "rollout")
    _wait_options(rollout)

    rollout_get = _command(commands, "rollout get", "show a rollout, pod by pod")
    rollout_get.add_argument("target", metavar="NS/NAME", help="namespace and rollout name")
    _wait_options(rollout_get)
    for verb, summary in (
        ("pause", "pause a rollout: restarts under way finish, no new ones start"),
        ("resume", "resume a paused rollout"),
        ("cancel", "cancel a rollout: no new restarts start"),
    ):
        action = _command(commands, f"rollout {verb}", summary)
        action.add_argument("target", metavar="NS/NAME", help="namespace and rollout name")
    return parser


def normalise(argv: Sequence[str]) -> list[str]:
    """``rollout get X`` -> the ``rollout get`` command: argparse has no optional second word."""
    args = list(argv)
    for i, word in enumerate(args):
        if word.startswith("-"):
            continue
        if i > 0 and args[i - 1] in _VALUE_OPTIONS:
            continue
        if word == "rollout" and i + 1 < len(args) and args[i + 1] in ROLLOUT_VERBS:
            args[i : i + 2] = [f"rollout {args[i + 1]}"]
        break
    return args


_VALUE_OPTIONS = frozenset({"--url", "--token", "--token-file", "--ca", "-o", "--output"})


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    *,
    aliases: Sequence[str] = (),
    extra: str = "",
) -> argparse.ArgumentParser:
    epilog = "\n\n".join(part for part in (extra, EXIT_CODES) if part)
    command = commands.add_parser(
        name,
        aliases=list(aliases),
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(command, suppress=True)
    return command


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options every command takes, before or after its name. Given after the name, argparse
    would overwrite a value given before it with the default; SUPPRESS keeps it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection and output")
    group.add_argument("--url", default=default(None), help="the service (CRR_GATEWAY_URL)")
    group.add_argument("--token", default=default(None), help="bearer token (CRR_GATEWAY_TOKEN)")
    group.add_argument(
        "--token-file",
        default=default(None),
        metavar="FILE",
        help="read the token from FILE on every request (CRR_GATEWAY_TOKEN_FILE)",
    )
    group.add_argument(
        "--ca", default=default(None), metavar="FILE", help="private CA bundle (CRR_GATEWAY_CA)"
    )
    group.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "name"),
        default=default("text"),
        help="text (default), json as the service sent it, or NS/NAME",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress on stderr",
    )


def _containers(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "-c", "--container", dest="containers", action="append", metavar="CONTAINER", help=text
    )


def _create_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help=f"validate the {what}; create nothing"
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="printable ASCII; the same key and request give the same "
        f"{what} however often they are sent (default: a random key)",
    )


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", action="store_true", help="wait until it has finished; exit 0 or 1 by outcome"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="with --wait: give up after this long (exit 3)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value
