"""The bench's pure parts on synthetic numbers: statistics, parsers and the report. The bench
itself never runs in the suite (``make bench`` does)."""

from __future__ import annotations

import math

import pytest

from bench.cost import CostFigure
from bench.creates import CreateFigures
from bench.env import Environment
from bench.fanout import FanoutRun, MemoryPoint
from bench.plan import FULL, QUICK, plan_for
from bench.polling import PollFigures
from bench.report import Results, render
from bench.stats import (
    Figure,
    Run,
    describe_counts,
    fmt,
    fmt_ratio,
    median,
    parse_request_totals,
    parse_wrk,
    percentile,
    ratio,
    run_from_latencies,
    subtract,
    total,
)

METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",\
scope="resource",subresource="",verb="GET",version="v1"} 10
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="pods",\
scope="resource",subresource="",verb="GET",version="v1"} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="apps.kruise.io",\
resource="containerrecreaterequests",scope="resource",subresource="",verb="POST",\
version="v1beta1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps.kruise.io",\
resource="containerrecreaterequests",scope="resource",subresource="status",verb="PATCH",\
version="v1beta1"} 3
apiserver_request_duration_seconds_count{verb="GET"} 99
"""


def test_median_and_percentiles() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, math.nan, 3.0]) == 2.0
    assert math.isnan(median([]))
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_ratio_and_formatting() -> None:
    assert ratio(10.0, 4.0) == 2.5
    assert math.isnan(ratio(1.0, 0.0))
    assert fmt_ratio(2.5) == "2.50x"
    assert fmt_ratio(math.nan) == "n/a"
    assert fmt(12345.6) == "12,346"
    assert fmt(1.234, 2) == "1.23"


def test_runs_and_figures() -> None:
    run = run_from_latencies([0.001] * 99 + [0.1], seconds=2.0, errors=1)
    assert run.ops == 100
    assert run.throughput == 50.0
    assert run.p50_ms == pytest.approx(1.0)
    assert run.p99_ms == pytest.approx(1.0)
    figure = Figure.of(
        [Run(100, 1.0, 1.0, 5.0), Run(300, 1.0, 3.0, 9.0, errors=2), Run(200, 1.0, 2.0, 7.0)]
    )
    assert (figure.throughput, figure.p50_ms, figure.p99_ms) == (200.0, 2.0, 7.0)
    assert figure.errors == 2 and figure.runs == 3


def test_parse_wrk() -> None:
    out = (
        "Running 2s test @ http://127.0.0.1:1/x\n"
        'BENCH_JSON {"requests":1000,"duration_us":2000000,"bytes":1,"status":3,"connect":0,'
        '"read":1,"write":0,"timeout":0,"p50_us":1500,"p99_us":9000,"mean_us":2000.0}\n'
    )
    run = parse_wrk(out)
    assert run.ops == 997 and run.seconds == 2.0  # 3 non-2xx answers are not served polls
    assert run.throughput == 498.5
    assert (run.p50_ms, run.p99_ms, run.errors) == (1.5, 9.0, 4)
    with pytest.raises(ValueError):
        parse_wrk("no result here")


def test_request_totals_and_subtraction() -> None:
    before = parse_request_totals(METRICS)
    assert before[("GET", "pods", "")] == 12  # summed over codes
    assert before[("PATCH", "containerrecreaterequests", "status")] == 3
    assert total(before) == 20  # the duration histogram is not counted
    after = dict(before)
    after[("GET", "pods", "")] += 10
    after[("POST", "containerrecreaterequests", "")] += 10
    after[("PATCH", "containerrecreaterequests", "status")] += 4
    active = subtract(after, before)
    quiet = {("PATCH", "containerrecreaterequests", "status"): 4.0}
    net = subtract(active, quiet)
    assert total(net) == 20
    text = describe_counts(net, per=10)
    assert text == "GET pods +1.00, POST containerrecreaterequests +1.00"
    assert describe_counts({}, per=10) == "none"
    rare = {("POST", "tokenreviews", ""): 3.0, ("GET", "pods", ""): 0.2}
    assert describe_counts(rare, per=1000) == "in the whole batch: POST tokenreviews +3"


def test_plans() -> None:
    assert FULL.poll_concurrency == (1, 50, 500)
    assert FULL.create_concurrency == (1, 8, 32)
    assert FULL.round_size(32) == 128 and FULL.create_pods == 128
    assert QUICK.poll_seconds < FULL.poll_seconds
    assert plan_for(True, repetitions=5, poll_seconds=None).repetitions == 5


def test_report_renders_every_section() -> None:
    fig = Figure(throughput=1000.0, p50_ms=1.0, p99_ms=5.0, errors=0, runs=3)
    slow = Figure(throughput=250.0, p50_ms=4.0, p99_ms=20.0, errors=1, runs=3)
    results = Results(started="2026-11-27 10:00 UTC", command="python -m bench", plan=FULL)
    results.environment = Environment(
        cpu="AMD EPYC", cores=2, memory_gib=23.4, kernel="6.1", versions={"Python": "3.11.2"}
    )
    results.poll_sizes = {"service": 700, "apiserver": 2100}
    results.polling = [PollFigures(50, fig, slow)]
    results.costs = [
        CostFigure(
            label="create via the service (warm)",
            operations=10,
            per_op=2.1,
            per_op_own=2.0,
            net={("GET", "pods", ""): 10.0, ("POST", "containerrecreaterequests", ""): 10.0},
            quiet_per_second=3.0,
            runs=3,
        )
    ]
    results.creates = [CreateFigures(8, 64, slow, fig)]
    results.per_process = {"kubectl create -f": slow}
    results.kruise_tools_error = "403 Forbidden"
    results.memory = [MemoryPoint(0, 50.0, 10.0, 0.5), MemoryPoint(1000, 60.0, 11.0, 0.5)]
    results.fanout = [
        FanoutRun(
            1000, 1000, 1000, last_ms=150.0, p50_ms=80.0, rss_before_mib=60.0, rss_during_mib=90.0
        )
    ]
    results.errors = ["memory: TimeoutError"]
    text = render(results)
    for expected in (
        "# crr-gateway benchmarks, 2026-11-27 10:00 UTC",
        "Command: `python -m bench`",
        "AMD EPYC, 2 cores",
        "| 50 | 1,000 | 250 | 4.00x |",
        "GET pods +1.00, POST containerrecreaterequests +1.00",
        "| 8 | 64 | 250.0 | 1,000 | 0.25x |",
        "403 Forbidden",
        "| 1,000 | 60.0 | 10.0 | 10.24 |",
        "| 1000 | 1000 | 1000 | 80 | 150 |",
        "## Errors",
    ):
        assert expected in text, expected


def test_report_of_an_empty_run() -> None:
    text = render(Results(started="now", command="python -m bench", plan=QUICK))
    assert text.startswith("# crr-gateway benchmarks, now")
    assert "## 1." not in text
