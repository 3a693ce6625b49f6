"""How big a run is: the full run for BENCHMARKS.md, or ``--quick`` to check the tooling."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Plan:
    repetitions: int = 3
    # polling
    poll_concurrency: tuple[int, ...] = (1, 50, 500)
    poll_seconds: float = 10.0
    poll_warmup_seconds: float = 2.0
    # polls near the server's limit (raw ASGI, bare FastAPI, routes, service, apiserver)
    limit_concurrency: tuple[int, ...] = (50,)
    workers_concurrency: tuple[int, ...] = (1, 50, 500)  # one worker against two
    # apiserver cost
    cost_seconds: float = 5.0  # polls run this long; the quiet interval is as long
    cost_creates: int = 50
    # creates
    create_concurrency: tuple[int, ...] = (1, 8, 32)
    creates_per_round: int = 64
    round_factor: int = 4  # a run has at least this many creates per worker
    cli_creates: int = 20  # restarts per block, one process each
    start_runs: int = 40  # of `python -c pass` and of `crr --version`, alternating
    # memory and fan-out
    cache_sizes: tuple[int, ...] = (1_000, 10_000, 50_000)
    memory_pods: int = 50
    follower_counts: tuple[int, ...] = (1, 1_000, 10_000)  # SSE streams, then long polls
    # rollouts: a CloneSet's pods restarted three ways (bench/rollouts.py)
    rollout_pods: int = 50
    rollout_max_unavailable: int = 5
    kubectl_poll_seconds: float = 1.0  # the kubectl way's `sleep` between two gets

    def round_size(self, concurrency: int) -> int:
        return max(self.creates_per_round, self.round_factor * concurrency)

    @property
    def create_pods(self) -> int:
        return max(self.round_size(c) for c in self.create_concurrency)


FULL = Plan()
QUICK = Plan(
    repetitions=2,
    poll_seconds=2.0,
    poll_warmup_seconds=1.0,
    cost_seconds=2.0,
    cost_creates=10,
    creates_per_round=16,
    round_factor=2,
    cli_creates=3,
    start_runs=5,
    cache_sizes=(200, 1_000),
    memory_pods=10,
    follower_counts=(1, 200),
    rollout_pods=10,
    rollout_max_unavailable=2,
)


def plan_for(quick: bool, **overrides: object) -> Plan:
    base = QUICK if quick else FULL
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **given)  # type: ignore[arg-type]
