"""1. Status polls: the service's cached ``GET .../restarts/{name}`` against a direct apiserver
GET of the same CRR, with wrk, at the same concurrency, warm-up and duration on both sides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.plan import Plan
from bench.stats import Figure, Run
from bench.wrk import run_wrk


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    url: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class PollFigures:
    concurrency: int
    service: Figure
    apiserver: Figure


def measure_polling(
    wrk: str, service: Target, apiserver: Target, plan: Plan, say: Callable[[str], None]
) -> list[PollFigures]:
    figures = []
    for connections in plan.poll_concurrency:
        runs: dict[str, list[Run]] = {service.label: [], apiserver.label: []}
        for target in (service, apiserver):  # the same warm-up on both sides
            run_wrk(
                wrk,
                target.url,
                connections=connections,
                seconds=plan.poll_warmup_seconds,
                token=target.token,
            )
        for rep in range(plan.repetitions):
            # alternate which side goes first, so drift does not favour one
            order = (service, apiserver) if rep % 2 == 0 else (apiserver, service)
            for target in order:
                run = run_wrk(
                    wrk,
                    target.url,
                    connections=connections,
                    seconds=plan.poll_seconds,
                    token=target.token,
                )
                runs[target.label].append(run)
                say(
                    f"  polls c={connections} {target.label} rep {rep + 1}: "
                    f"{run.throughput:,.0f}/s p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms"
                    + (f" errors {run.errors}" if run.errors else "")
                )
        figures.append(
            PollFigures(
                connections,
                Figure.of(runs[service.label]),
                Figure.of(runs[apiserver.label]),
            )
        )
    return figures
