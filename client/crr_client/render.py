"""What people read: results on stdout, progress on stderr. Colours and a redrawn progress bar
only when the stream is a terminal (and ``NO_COLOR`` is unset); plain lines otherwise, so CI
logs carry no escape codes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

Paint = Callable[[str], str]


def plain(word: str) -> str:
    return word


_CLEAR_LINE = "\r\x1b[K"
_COLORS = {
    "Succeeded": "32",
    "Failed": "31",
    "Cancelled": "31",
    "Paused": "33",
    "Skipped": "33",
    "Gone": "33",
    "Recreating": "36",
    "Restarting": "36",
    "Progressing": "36",
}
POD_DONE_STATES = ("Succeeded", "Failed", "Skipped", "Gone")


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Terminal:
    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        quiet: bool = False,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.out, self.err = out, err
        self.quiet = quiet
        colors_allowed = not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"
        self.out_tty, self.err_tty = _is_tty(out), _is_tty(err)
        self.out_color = colors_allowed and self.out_tty
        self.err_color = colors_allowed and self.err_tty
        self._bar: str | None = None
        self._started = time.monotonic()

    def result(self, text: str) -> None:
        """The answer: stdout, whatever else is going on."""
        self._clear_bar()
        self.out.write(text + "\n")
        self.out.flush()
        self._redraw_bar()

    def progress(self, text: str) -> None:
        """One line per state change, on stderr, with the seconds since the command started."""
        if self.quiet:
            return
        self._clear_bar()
        self.err.write(f"{time.monotonic() - self._started:6.1f}s  {text}\n")
        self._redraw_bar()
        self.err.flush()

    def error(self, text: str) -> None:
        self._clear_bar()
        self._bar = None
        self.err.write(text + "\n")
        self.err.flush()

    def bar(self, text: str) -> None:
        """A status line redrawn in place, only on a terminal."""
        if self.quiet or not self.err_tty:
            return
        self._bar = text
        self.err.write(_CLEAR_LINE + text)
        self.err.flush()

    def end_bar(self) -> None:
        self._clear_bar()
        self._bar = None

    def paint_out(self, word: str) -> str:
        """A state word for stdout, coloured on a terminal."""
        return _paint(word) if self.out_color else word

    def paint_err(self, word: str) -> str:
        """A state word for stderr, coloured on a terminal."""
        return _paint(word) if self.err_color else word

    def _clear_bar(self) -> None:
        if self._bar is not None:
            self.err.write(_CLEAR_LINE)

    def _redraw_bar(self) -> None:
        if self._bar is not None:
            self.err.write(self._bar)
            self.err.flush()


def _paint(word: str) -> str:
    color = _COLORS.get(word)
    return f"\x1b[{color}m{word}\x1b[0m" if color else word


# ---------------------------------------------------------------------------- restarts


def restart_word(doc: Mapping[str, Any]) -> str:
    if doc.get("finished"):
        return str(doc.get("result") or "Finished")
    return str(doc.get("phase") or "Unknown")


def restart_line(doc: Mapping[str, Any], paint: Paint = plain) -> str:
    """``restart demo/web-0-x7k2p Recreating: pod web-0, nginx Recreating, sidecar Pending``"""
    word = restart_word(doc)
    head = f"restart {doc.get('namespace')}/{doc.get('name')} {paint(word)}"
    if doc.get("finished") and doc.get("result") == "Failed":
        reason = doc.get("failureReason") or "Unknown"
        head += f" ({reason}: {doc.get('message')})" if doc.get("message") else f" ({reason})"
    states: Sequence[Mapping[str, Any]] = doc.get("containerStates") or ()
    if states:
        containers = ", ".join(f"{c.get('name')} {paint(str(c.get('phase')))}" for c in states)
    else:
        containers = ", ".join(str(name) for name in doc.get("containers") or ())
    return f"{head}: pod {doc.get('pod')}" + (f", {containers}" if containers else "")


def restart_table(items: Sequence[Mapping[str, Any]], paint: Paint = plain) -> str:
    rows = [("NAME", "POD", "STATE", "CONTAINERS")]
    rows += [
        (
            str(doc.get("name")),
            str(doc.get("pod")),
            restart_word(doc),
            ",".join(str(name) for name in doc.get("containers") or ()),
        )
        for doc in items
    ]
    return _table(rows, paint, state_column=2)


# ---------------------------------------------------------------------------- rollouts


def rollout_done(doc: Mapping[str, Any]) -> tuple[int, int]:
    pods = doc.get("pods") or ()
    done = sum(1 for pod in pods if pod.get("state") in POD_DONE_STATES)
    return done, len(pods)


def rollout_counts(doc: Mapping[str, Any]) -> str:
    done, total = rollout_done(doc)
    budget = doc.get("resolvedMaxUnavailable")
    return (
        f"{done}/{total} pods done, {doc.get('unavailable', 0)}"
        f"{'' if budget is None else f'/{budget}'} unavailable"
    )


def rollout_line(doc: Mapping[str, Any], paint: Paint = plain) -> str:
    """``rollout demo/shop-7x2k Progressing: CloneSet/shop, 3/8 pods done, 2/2 unavailable``"""
    phase = str(doc.get("phase") or "Unknown")
    text = f"rollout {doc.get('namespace')}/{doc.get('name')} {paint(phase)}"
    text += f": {rollout_what(doc)}, {rollout_counts(doc)}"
    failed = (doc.get("counts") or {}).get("Failed")
    if failed:
        text += f", {failed} failed"
    if doc.get("message"):
        text += f" ({doc.get('message')})"
    return text


def rollout_what(doc: Mapping[str, Any]) -> str:
    target = doc.get("target")
    if target:
        return f"{target.get('kind')}/{target.get('name')}"
    selector = doc.get("selector") or {}
    labels = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or ():
        values = ",".join(expression.get("values") or ())
        labels.append(f"{expression.get('key')} {expression.get('operator')} ({values})")
    return "pods " + ",".join(labels)


def pod_line(pod: Mapping[str, Any], paint: Paint = plain) -> str:
    """``pod shop-abcde Restarting (restart shop-7x2k-abcde)``"""
    text = f"pod {pod.get('pod')} {paint(str(pod.get('state')))}"
    if pod.get("restart"):
        text += f" (restart {pod.get('restart')})"
    if pod.get("message"):
        text += f": {pod.get('message')}"
    return text


def progress_bar(doc: Mapping[str, Any], width: int = 24) -> str:
    """``[#########...............] 3/8 pods done, 2/2 unavailable  Progressing``"""
    done, total = rollout_done(doc)
    filled = width if total == 0 else round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {rollout_counts(doc)}  {doc.get('phase')}"


def rollout_table(doc: Mapping[str, Any], paint: Paint = plain) -> str:
    rows = [("POD", "STATE", "RESTART", "MESSAGE")]
    rows += [
        (
            str(pod.get("pod")),
            str(pod.get("state")),
            str(pod.get("restart") or "-"),
            str(pod.get("message") or ""),
        )
        for pod in doc.get("pods") or ()
    ]
    return _table(rows, paint, state_column=1)


def _table(rows: Sequence[Sequence[str]], paint: Paint, *, state_column: int) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(cell))
            shown = paint(cell) if n and i == state_column else cell
            cells.append(shown + pad)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
