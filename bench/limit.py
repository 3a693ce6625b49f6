"""1b. Polls near the server's limit: authenticated status polls of one restart against what
bounds them, in one run at the same concurrency, warm-up and duration:

* a raw ASGI callable answering the same number of bytes (``bench.baselines raw``): the
  server's own limit under the service's uvicorn settings;
* a bare FastAPI route with two untyped path parameters (``bench.baselines fastapi``): the
  limit of any FastAPI route;
* the service without its fast path (``bench.baselines routes``): every poll through FastAPI's
  routes and dependencies, as before ``service.http.fast_reads``;
* the service (``python -m service``), authentication ``kubernetes`` with a caller's
  service-account token (reviews cached);
* the apiserver's own GET of the CRR with the same token.

Then 1c: the service with ``--workers 2`` (two processes on one socket, each with its own
watches and caches) against one worker, at each concurrency."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import Service, World
from bench.plan import Plan
from bench.polling import Target
from bench.stats import Figure, Run, ratio
from bench.wrk import run_wrk

Say = Callable[[str], None]
AUTH = {"CRR_GATEWAY_AUTH_MODE": "kubernetes"}


@dataclass(frozen=True, slots=True)
class LimitFigures:
    concurrency: int
    figures: dict[str, Figure]  # side label -> figure


def baseline(
    world: World, kind: str, namespaces: list[str], workdir: Path, **kw: object
) -> Service:
    """``python -m bench.baselines KIND`` as a service process (same settings and env)."""
    workers = int(str(kw.get("workers", 1)))
    argv = [sys.executable, "-m", "bench.baselines", kind, "--workers", str(workers)]
    name = f"baseline-{kind}" + (f"-w{workers}" if workers > 1 else "")
    return Service(world, namespaces, workdir, name=name, env=dict(AUTH), argv=argv)


def measure(
    wrk: str,
    targets: Sequence[Target],
    concurrency: Sequence[int],
    *,
    repetitions: int,
    seconds: float,
    warmup: float,
    say: Say,
) -> list[LimitFigures]:
    """Each target at each concurrency: one warm-up each, then ``repetitions`` rounds, the
    order rotated every round so drift favours no side."""
    results = []
    for connections in concurrency:
        runs: dict[str, list[Run]] = {t.label: [] for t in targets}
        for target in targets:
            run_wrk(wrk, target.url, connections=connections, seconds=warmup, token=target.token)
        for rep in range(repetitions):
            shift = rep % len(targets)
            for target in [*targets[shift:], *targets[:shift]]:
                run = run_wrk(
                    wrk, target.url, connections=connections, seconds=seconds, token=target.token
                )
                runs[target.label].append(run)
                say(
                    f"  c={connections} {target.label} rep {rep + 1}: {run.throughput:,.0f}/s "
                    f"p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms"
                    + (f" errors {run.errors}" if run.errors else "")
                )
        results.append(
            LimitFigures(connections, {label: Figure.of(r) for label, r in runs.items()})
        )
    return results


def _cell(value: float, digits: int = 0) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def render(limit: list[LimitFigures], workers: list[LimitFigures], body_bytes: int) -> str:
    if not limit and not workers:
        return ""
    lines = ["## 1b. Polls near the server's limit", ""]
    if limit:
        labels = list(limit[0].figures)
        lines += [
            f"Authenticated polls (`kubernetes` mode, a service-account token, reviews cached) "
            f"of one {body_bytes}-byte restart, beside what bounds them; `wrk` with "
            "`bench/wrk.lua`, the same token on every side, median of the runs.",
            "",
            "| pollers | " + " | ".join(f"{label} req/s" for label in labels) + " |",
            "|---:|" + "---:|" * len(labels),
        ]
        for row in limit:
            cells = [_cell(row.figures[label].throughput) for label in labels]
            lines.append(f"| {row.concurrency} | " + " | ".join(cells) + " |")
        lines += ["", "| pollers | side | p50 ms | p99 ms | errors |", "|---:|---|---:|---:|---:|"]
        for row in limit:
            for label in labels:
                f = row.figures[label]
                lines.append(
                    f"| {row.concurrency} | {label} | {_cell(f.p50_ms, 2)} | "
                    f"{_cell(f.p99_ms, 2)} | {f.errors} |"
                )
        lines += ["", "| pollers | ratio | value |", "|---:|---|---:|"]
        for row in limit:
            service = row.figures.get("service")
            for label in labels:
                if service is None or label == "service":
                    continue
                value = ratio(service.throughput, row.figures[label].throughput)
                lines.append(f"| {row.concurrency} | service / {label} | {_cell(value, 2)}x |")
    if workers:
        lines += [
            "",
            "### 1c. `--workers 2`",
            "",
            "The service (authenticated polls as above) as one process and as two processes on "
            "one socket, each with its own watches and caches.",
            "",
            "| pollers | 1 worker req/s | 2 workers req/s | ratio | 1 worker p99 ms | "
            "2 workers p99 ms |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in workers:
            one, two = row.figures["1 worker"], row.figures["2 workers"]
            lines.append(
                f"| {row.concurrency} | {_cell(one.throughput)} | {_cell(two.throughput)} | "
                f"{_cell(ratio(two.throughput, one.throughput), 2)}x | {_cell(one.p99_ms, 2)} | "
                f"{_cell(two.p99_ms, 2)} |"
            )
    return "\n".join(lines)


def run_section(
    world: World,
    workdir: Path,
    wrk: str,
    namespace: str,
    name: str,
    apiserver: Target,
    plan: Plan,
    sections: set[str],
    say: Say,
) -> tuple[list[LimitFigures], list[LimitFigures]]:
    """Start the sides (each serving ``namespace``, authentication ``kubernetes``), measure
    polls of restart ``name`` with the apiserver side's token, stop them."""
    path = f"/v1/namespaces/{namespace}/restarts/{name}"
    token = apiserver.token
    started: list[Service] = []

    def start(kind: str, workers: int = 1) -> Target:
        if kind == "service" and workers == 1:
            svc = Service(world, [namespace], workdir, name="service-limit", env=dict(AUTH))
        else:
            svc = baseline(world, kind, [namespace], workdir, workers=workers)
        started.append(svc.start())
        label = kind if workers == 1 else f"{kind} x{workers}"
        return Target(label, svc.url + path, token)

    limit: list[LimitFigures] = []
    workers: list[LimitFigures] = []
    try:
        service = start("service")
        if "limit" in sections:
            sides = [start("raw"), start("fastapi"), start("routes"), service, apiserver]
            limit = measure(
                wrk,
                sides,
                plan.limit_concurrency,
                repetitions=plan.repetitions,
                seconds=plan.poll_seconds,
                warmup=plan.poll_warmup_seconds,
                say=say,
            )
        if "workers" in sections:
            two = start("service", workers=2)
            workers = measure(
                wrk,
                [Target("1 worker", service.url, token), Target("2 workers", two.url, token)],
                plan.workers_concurrency,
                repetitions=plan.repetitions,
                seconds=plan.poll_seconds,
                warmup=plan.poll_warmup_seconds,
                say=say,
            )
    finally:
        for svc in started:
            svc.stop()
    return limit, workers
