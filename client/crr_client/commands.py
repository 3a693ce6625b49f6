"""What every command shares: the connection, the terminal, the deadline, and printing a
document in the chosen output form."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from crr_client import specs
from crr_client.config import Config
from crr_client.errors import EXIT_ENDED_BADLY, EXIT_OK, Unavailable, UsageError
from crr_client.render import Terminal
from crr_client.transport import Response, Transport, api_path


class Context:
    def __init__(
        self,
        args: argparse.Namespace,
        *,
        out: TextIO,
        err: TextIO,
        environ: Mapping[str, str] = os.environ,
        transport: Callable[[Config, Callable[[str], None]], Transport] | None = None,
    ) -> None:
        self.args = args
        self.output: str = args.output
        self.term = Terminal(out, err, quiet=args.quiet, environ=environ)
        config = Config.resolve(
            url=args.url,
            token=args.token,
            token_file=args.token_file,
            ca_file=args.ca,
            environ=environ,
        )
        make = transport or (lambda config, notice: Transport(config, notice=notice))
        self.transport = make(config, self._notice)
        timeout: float | None = getattr(args, "timeout", None)
        if timeout is not None and not getattr(args, "wait", True):
            raise UsageError("--timeout applies with --wait")
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def _notice(self, message: str) -> None:
        """Retries and the service's warnings: progress, except that warnings always show."""
        if message.startswith("warning:"):
            self.term.error(message)
        else:
            self.term.progress(message)

    def create(self, namespace: str, kind: str, body: Mapping[str, Any]) -> Response:
        """POST a restart or a rollout with an Idempotency-Key that every retry repeats; on
        giving up, say which key finds out whether it landed."""
        args = self.args
        key = specs.idempotency_key(args.idempotency_key)
        try:
            response = self.transport.request(
                "POST",
                api_path("v1", "namespaces", namespace, f"{kind}s"),
                query={"dryRun": "true"} if args.dry_run else None,
                body=body,
                headers={"Idempotency-Key": key},
                deadline=self.deadline,
            )
        except Unavailable as e:
            if not args.dry_run and e.hint is None:
                e.hint = (
                    f"the {kind} may have been created; the same command with "
                    f"--idempotency-key '{key}' finds out without making a second one"
                )
            raise
        for warning in response.json().get("warnings") or ():
            self.transport.warn(str(warning))
        return response

    def emit(self, document: Mapping[str, Any], text: str, line: str) -> None:
        """The result: the service's JSON as sent, ``NS/NAME``, or a line for people."""
        if self.output == "json":
            self.term.result(text)
        elif self.output == "name":
            self.term.result(f"{document.get('namespace')}/{document.get('name')}")
        else:
            self.term.result(line)


def exit_code(failed: bool) -> int:
    return EXIT_ENDED_BADLY if failed else EXIT_OK


def restart_failed(document: Mapping[str, Any]) -> bool:
    return bool(document.get("finished")) and document.get("result") != "Succeeded"


def rollout_failed(document: Mapping[str, Any]) -> bool:
    return bool(document.get("finished")) and document.get("phase") != "Succeeded"


def created_prefix(status: int) -> str:
    return "created " if status == 201 else "found (same Idempotency-Key) "
