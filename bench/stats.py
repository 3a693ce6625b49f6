"""Pure helpers: statistics over repeated runs, and parsers for what the tools print.

Nothing here does I/O, so the smoke test can run it on synthetic numbers.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# ------------------------------------------------------------------ statistics


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values (a figure that could not be measured)."""
    data = [v for v in values if not math.isnan(v)]
    return statistics.median(data) if data else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile out of range: {pct}")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, NaN when either is missing or the baseline is zero."""
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return math.nan
    return value / baseline


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run: how many operations, over how long, their latencies, and failures."""

    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else math.nan


def run_from_latencies(latencies_s: Sequence[float], seconds: float, errors: int = 0) -> Run:
    """A run from per-operation latencies (seconds) and the wall time of the whole batch."""
    ms = [v * 1000 for v in latencies_s]
    return Run(
        ops=len(latencies_s),
        seconds=seconds,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        errors=errors,
    )


@dataclass(frozen=True, slots=True)
class Figure:
    """The median over repeated runs of one configuration."""

    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    runs: int

    @staticmethod
    def of(runs: Sequence[Run]) -> Figure:
        return Figure(
            throughput=median(r.throughput for r in runs),
            p50_ms=median(r.p50_ms for r in runs),
            p99_ms=median(r.p99_ms for r in runs),
            errors=sum(r.errors for r in runs),
            runs=len(runs),
        )


# ------------------------------------------------------------------ wrk

WRK_MARKER = "BENCH_JSON "


def parse_wrk(output: str) -> Run:
    """The run our Lua ``done()`` hook printed (see ``bench/wrk.lua``)."""
    for line in output.splitlines():
        if line.startswith(WRK_MARKER):
            data = json.loads(line[len(WRK_MARKER) :])
            errors = sum(
                int(data[k]) for k in ("status", "connect", "read", "write", "timeout") if k in data
            )
            # non-2xx/3xx answers are counted as errors, not as served polls (their latency
            # is still in wrk's histogram)
            return Run(
                ops=int(data["requests"]) - int(data.get("status", 0)),
                seconds=float(data["duration_us"]) / 1e6,
                p50_ms=float(data["p50_us"]) / 1000,
                p99_ms=float(data["p99_us"]) / 1000,
                errors=errors,
            )
    raise ValueError("wrk printed no result line (was bench/wrk.lua loaded?)\n" + output[-2000:])


# ------------------------------------------------------------------ apiserver /metrics

RequestKey = tuple[str, str, str]  # (verb, resource, subresource)
Counts = dict[RequestKey, float]
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_request_totals(text: str) -> dict[RequestKey, float]:
    """``apiserver_request_total`` from the apiserver's Prometheus text, summed over the
    labels we do not key on (code, scope, group, version, component, dry_run)."""
    totals: dict[RequestKey, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        totals[key] = totals.get(key, 0.0) + float(match["value"])
    return totals


def subtract(active: Mapping[RequestKey, float], quiet: Mapping[RequestKey, float]) -> Counts:
    """``active - quiet`` per key: the requests of one interval less those of another (a
    before/after pair, or an active interval less a quiet one of the same length)."""
    keys = set(active) | set(quiet)
    return {k: active.get(k, 0.0) - quiet.get(k, 0.0) for k in keys}


def total(counts: Mapping[RequestKey, float]) -> float:
    return sum(counts.values())


def describe_counts(counts: Mapping[RequestKey, float], per: int, threshold: float = 0.05) -> str:
    """``GET pods +1.00, POST containerrecreaterequests +1.00`` per operation, biggest first;
    kinds too rare to show per operation but seen at least once in the batch are given as
    batch totals (``POST tokenreviews 23 in the batch``); the rest is left out."""
    parts = []
    rare = []
    for (verb, resource, sub), value in sorted(counts.items(), key=lambda kv: (-abs(kv[1]), kv[0])):
        each = value / per if per else math.nan
        what = resource or "(non-resource)"
        if sub:
            what += "/" + sub
        if abs(each) >= threshold:
            parts.append(f"{verb} {what} {each:+.2f}")
        elif abs(value) >= 1:
            rare.append(f"{verb} {what} {value:+.0f}")
    if rare:
        parts.append("in the whole batch: " + ", ".join(rare))
    return ", ".join(parts) or "none"


# ------------------------------------------------------------------ formatting


def fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table; the first column left-aligned, the others right-aligned."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)
