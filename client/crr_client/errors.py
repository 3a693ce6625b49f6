"""What can go wrong, and the exit code each case leaves the process with.

The codes are the contract with scripts and CI jobs (see ``crr --help``)."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0  # succeeded, or accepted when not waiting
EXIT_ENDED_BADLY = 1  # the restart or rollout ended Failed or Cancelled
EXIT_REFUSED = 2  # the service refused the request (4xx), or the command line is invalid
EXIT_UNAVAILABLE = 3  # the service could not be reached, timed out or answered 5xx
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class CliError(Exception):
    """An error the user sees as one message on stderr, then the process exits ``exit_code``."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CliError):
    """The command line or the configuration is not valid; nothing was sent."""


class Refused(CliError):
    """The service answered 4xx (after any retries): ``problem`` is its problem document."""

    def __init__(self, status: int, problem: dict[str, Any] | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class Unavailable(CliError):
    """The service could not be reached, answered 5xx, or retries ran out of time."""

    exit_code = EXIT_UNAVAILABLE


class Deleted(CliError):
    """The restart or rollout disappeared while we waited for it to finish."""

    exit_code = EXIT_ENDED_BADLY


class TimedOut(Unavailable):
    """``--timeout`` passed before the restart or rollout finished."""
