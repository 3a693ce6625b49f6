"""The markdown report of a run (pure: results in, text out)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.cli import CliDetail
from bench.cli_start import StartUp
from bench.cli_start import render as render_start_up
from bench.cost import CostFigure
from bench.creates import CreateFigures
from bench.env import Environment
from bench.fanout import FanoutRun, MemoryPoint
from bench.plan import Plan
from bench.polling import PollFigures
from bench.stats import Figure, describe_counts, fmt, fmt_ratio, median, ratio, table


@dataclass
class Results:
    started: str  # ISO date and time
    command: str
    plan: Plan
    environment: Environment | None = None
    notes: list[str] = field(default_factory=list)
    poll_sizes: dict[str, int] = field(default_factory=dict)  # response bytes per side
    polling: list[PollFigures] = field(default_factory=list)
    costs: list[CostFigure] = field(default_factory=list)
    creates: list[CreateFigures] = field(default_factory=list)
    creates_auth: list[CreateFigures] = field(default_factory=list)
    per_process: dict[str, Figure] = field(default_factory=dict)  # command -> wall time
    kruise_tools_error: str | None = None
    cli: CliDetail | None = None
    cli_start: list[StartUp] = field(default_factory=list)
    memory: list[MemoryPoint] = field(default_factory=list)
    fanout: list[FanoutRun] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)  # heading -> markdown its module wrote
    errors: list[str] = field(default_factory=list)


def _env(results: Results) -> str:
    env = results.environment
    if env is None:
        return ""
    lines = [
        "## Machine and versions",
        "",
        f"- CPU: {env.cpu}, {env.cores} cores; memory {env.memory_gib:.1f} GiB; Linux {env.kernel}",
    ]
    lines += [f"- {name}: {version}" for name, version in env.versions.items()]
    return "\n".join(lines)


def _polling(results: Results) -> str:
    if not results.polling:
        return ""
    rows = []
    for f in results.polling:
        rows.append(
            [
                str(f.concurrency),
                fmt(f.service.throughput, 0),
                fmt(f.apiserver.throughput, 0),
                fmt_ratio(ratio(f.service.throughput, f.apiserver.throughput)),
                fmt(f.service.p50_ms, 2),
                fmt(f.apiserver.p50_ms, 2),
                fmt(f.service.p99_ms, 2),
                fmt(f.apiserver.p99_ms, 2),
                f"{f.service.errors} / {f.apiserver.errors}",
            ]
        )
    sizes = ", ".join(f"{k} {v} bytes" for k, v in results.poll_sizes.items())
    plan = results.plan
    return "\n".join(
        [
            "## 1. Status polls",
            "",
            f"`wrk` with `bench/wrk.lua`, {plan.poll_seconds:.0f} s per run after a "
            f"{plan.poll_warmup_seconds:.0f} s warm-up on each side, median of "
            f"{plan.repetitions} runs (sides alternate which goes first). Service: "
            "`GET /v1/namespaces/{ns}/restarts/{name}` on plain HTTP; apiserver: `GET "
            "/apis/apps.kruise.io/v1beta1/namespaces/{ns}/containerrecreaterequests/{name}` "
            "over HTTPS with a service-account bearer token (authn + RBAC, as a portal does). "
            f"Response sizes: {sizes}. Errors are non-2xx answers (the apiserver's 429s under "
            "load) and socket errors; they are not counted in req/s, but wrk's latencies "
            "include them.",
            "",
            table(
                [
                    "pollers",
                    "service req/s",
                    "apiserver req/s",
                    "ratio",
                    "service p50 ms",
                    "apiserver p50 ms",
                    "service p99 ms",
                    "apiserver p99 ms",
                    "errors (svc / api)",
                ],
                rows,
            ),
        ]
    )


def _costs(results: Results) -> str:
    if not results.costs:
        return ""
    rows = [
        [
            c.label,
            str(c.operations),
            fmt(c.per_op, 3),
            fmt(c.per_op_own, 3),
            describe_counts(c.net, c.operations),
            fmt(c.quiet_per_second, 1),
        ]
        for c in results.costs
    ]
    return "\n".join(
        [
            "## 2. apiserver requests per operation",
            "",
            "`apiserver_request_total` from the apiserver's `/metrics`, summed, read before "
            "and after a batch (plus 1 s for kruise's reactions to land), less the same "
            "counters over a quiet interval of the same length right after (kruise-manager, "
            "the simulator and the watches keep talking). Keyed by verb and resource, so the "
            "breakdown shows what each operation caused. `own` counts only the kinds the "
            "service itself sends (pod GET, CRR POST/GET, reviews, events). Median of "
            f"{results.plan.repetitions} batches. Targets: 0 per poll, at most 2 per create.",
            "",
            table(
                [
                    "operation",
                    "ops per batch",
                    "requests per op (all)",
                    "own per op",
                    "breakdown per op (median batch)",
                    "background req/s",
                ],
                rows,
            ),
        ]
    )


def _create_rows(figures: list[CreateFigures]) -> list[list[str]]:
    rows = []
    for f in figures:
        rows.append(
            [
                str(f.concurrency),
                str(f.per_round),
                fmt(f.service.throughput, 1),
                fmt(f.direct.throughput, 1),
                fmt_ratio(ratio(f.service.throughput, f.direct.throughput)),
                fmt(f.service.p50_ms, 1),
                fmt(f.direct.p50_ms, 1),
                fmt(f.service.p99_ms, 1),
                fmt(f.direct.p99_ms, 1),
                f"{f.service.errors} / {f.direct.errors}",
            ]
        )
    return rows


_CREATE_HEADERS = [
    "concurrency",
    "creates per run",
    "service /s",
    "python client /s",
    "ratio",
    "service p50 ms",
    "client p50 ms",
    "service p99 ms",
    "client p99 ms",
    "errors (svc / client)",
]


def _creates(results: Results) -> str:
    if not results.creates:
        return ""
    parts = [
        "## 3. Creates",
        "",
        "Each create on its own running pod; between runs every CRR of the namespace is "
        "deleted (and the service's cache has seen it). The python client creates exactly "
        "the CRR the service builds (same builder) with one shared `ApiClient` whose pool "
        "matches the concurrency; the service is called with `httpx` from as many threads. "
        "The service also reads the pod and checks it first. One untimed warm-up run per "
        f"side; median of {results.plan.repetitions} runs. The simulated daemon is down, so "
        "restarts stay pending and nothing else churns.",
        "",
    ]
    if results.creates:
        parts += [table(_CREATE_HEADERS, _create_rows(results.creates)), ""]
    if results.creates_auth:
        parts += [
            "With authentication `kubernetes` (a caller's service-account token; TokenReview "
            "and SubjectAccessReview cached by the service):",
            "",
            table(_CREATE_HEADERS, _create_rows(results.creates_auth)),
            "",
        ]
    return "\n".join(parts).rstrip()


def _command_lines(results: Results) -> str:
    if not (results.per_process or results.kruise_tools_error or results.cli_start):
        return ""
    detail = results.cli or CliDetail()
    plan = results.plan
    parts = ["## 5. Command lines", ""]
    if results.per_process:
        rows = [
            [
                label,
                detail.measures.get(label, ""),
                fmt(f.p50_ms, 1),
                fmt(f.p99_ms, 1),
                str(f.errors),
            ]
            for label, f in results.per_process.items()
        ]
        parts += [
            "One process per restart, process start included: wall time from just before the "
            "process starts to just after it exits. In each block a command restarts each of "
            f"the same {plan.cli_creates} running pods once, one after another; every CRR is "
            f"then deleted. {plan.repetitions} blocks per command, the commands' order "
            "rotating from block to block, after one untimed run of each. Figures: the median "
            "and the slowest run of a block, each the median over the blocks. Unexpected "
            "outcomes are counted, not timed.",
            "",
            table(["command", "one run", "median ms", "slowest ms", "unexpected"], rows),
            "",
        ]
    if detail.load is not None:
        parts += [
            f"1-minute load average {detail.load[0]:.2f} when the timing began and "
            f"{detail.load[1]:.2f} when it ended (everything on the machine counts).",
            "",
        ]
    if detail.observations:
        parts += ["Seen in the same run:", "", *(f"- {note}" for note in detail.observations), ""]
    if detail.versions:
        parts += [f"Versions: {', '.join(detail.versions)}.", ""]
    if results.kruise_tools_error:
        parts += [
            "`kubectl kruise create ContainerRecreateRequest` could not be measured: building "
            f"`github.com/openkruise/kruise-tools` failed here: `{results.kruise_tools_error}`",
            "",
        ]
    if results.cli_start:
        parts += [
            "Start-up of `crr`, process start included: `crr --version` against a bare "
            "`python -c pass` of the same interpreter, alternating, before the control plane "
            "starts (bench/cli_start.py):",
            "",
            render_start_up(results.cli_start),
            "",
        ]
    return "\n".join(parts).rstrip()


def _memory(results: Results) -> str:
    parts = []
    if results.memory:
        base = results.memory[0].rss_mib
        rows = []
        for p in results.memory:
            extra = p.rss_mib - base
            per = extra * 1024 / p.crrs if p.crrs else math.nan
            rows.append(
                [
                    f"{p.crrs:,}",
                    fmt(p.rss_mib, 1),
                    fmt(extra, 1) if p.crrs else "baseline",
                    fmt(per, 2),
                    fmt(p.create_p50_ms, 1),
                    fmt(p.poll_p50_ms, 2),
                ]
            )
        parts += [
            "## 4. Memory and fan-out",
            "",
            "A service process serving only this namespace: RSS (`VmRSS`, median of 5 samples) "
            "with an empty cache, then with N CRRs created directly as admin (spread over "
            "running pods; the simulated daemon is down, so they stay pending until kruise "
            "marks them failed after 60 s). Probes at each size: 5 sequential creates "
            "through the service on spare pods, 20 polls each.",
            "",
            table(
                [
                    "CRRs cached",
                    "RSS MiB",
                    "over empty MiB",
                    "KiB per CRR",
                    "create p50 ms",
                    "poll p50 ms",
                ],
                rows,
            ),
            "",
        ]
    if results.fanout:
        f = results.fanout
        rows = [
            [
                str(r.followers),
                str(r.connected),
                str(r.received_final),
                fmt(r.p50_ms, 0),
                fmt(r.last_ms, 0),
                fmt(r.rss_before_mib, 1),
                fmt(r.rss_during_mib, 1),
            ]
            for r in f
        ]
        rows.append(
            [
                "median",
                "",
                "",
                fmt(median(r.p50_ms for r in f), 0),
                fmt(median(r.last_ms for r in f), 0),
                fmt(median(r.rss_before_mib for r in f), 1),
                fmt(median(r.rss_during_mib for r in f), 1),
            ]
        )
        if not parts:
            parts += ["## 4. Memory and fan-out", ""]
        parts += [
            "SSE: followers of one pending restart (`GET .../restarts/{name}/events`, raw "
            "asyncio sockets in the bench process); the final status is then written as "
            "kruise-daemon writes it (a status merge-patch), and the time runs from just "
            "before that write to each follower holding the finished snapshot.",
            "",
            table(
                [
                    "followers",
                    "connected",
                    "got final",
                    "p50 ms",
                    "last ms",
                    "RSS before MiB",
                    "RSS during MiB",
                ],
                rows,
            ),
        ]
    return "\n".join(parts).rstrip()


def render(results: Results) -> str:
    header = [
        f"# crr-gateway benchmarks, {results.started}",
        "",
        f"Command: `{results.command}`",
    ]
    if results.notes:
        header += ["", *[f"> {note}" for note in results.notes]]
    sections = [
        "\n".join(header),
        _env(results),
        _polling(results),
        *results.sections.values(),
        _costs(results),
        _creates(results),
        _memory(results),
        _command_lines(results),
    ]
    if results.errors:
        sections.append("## Errors\n\n" + "\n".join(f"- {e}" for e in results.errors))
    return "\n\n".join(s for s in sections if s) + "\n"
