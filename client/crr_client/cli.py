"""``crr``: parse, run one command, map what happened to an exit code.

Imports are deferred: ``crr --version`` loads nothing but this module, and a command loads
argparse, http.client, ssl and json only when it runs."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words in (["--version"], ["-V"]):  # the fast path: no argparse, no network stack
        from crr_client import __version__

        sys.stdout.write(f"crr {__version__}\n")
        return 0
    from crr_client.errors import EXIT_INTERRUPTED, EXIT_UNAVAILABLE, CliError

    try:
        return _run(words)
    except CliError as e:
        sys.stderr.write(f"crr: {e.message}\n" + (f"  hint: {e.hint}\n" if e.hint else ""))
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("crr: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout went away (`crr list demo | head -1`): nothing left to tell anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_UNAVAILABLE


def _run(words: list[str]) -> int:
    from crr_client import arguments
    from crr_client.commands import Context

    args = arguments.build().parse_args(arguments.normalise(words))
    context = Context(args, out=sys.stdout, err=sys.stderr)
    try:
        if args.command.startswith("rollout"):
            from crr_client import rollouts

            verb = args.command.partition(" ")[2] or "create"
            if verb == "create":
                return rollouts.create(context)
            if verb == "get":
                return rollouts.get(context)
            return rollouts.action(context, verb)
        from crr_client import restarts

        handlers = {
            "restart": restarts.restart,
            "get": restarts.get,
            "list": restarts.listing,
            "follow": restarts.follow,
            "cancel": restarts.cancel,
        }
        return handlers[args.command](context)
    finally:
        context.transport.close()
