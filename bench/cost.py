"""2. apiserver cost: requests the apiserver counted (``apiserver_request_total`` from its own
``/metrics``) per status poll and per create.

Method: read the counters, run a batch, read them again; then leave the cluster alone for an
interval of the same length and read them before and after that too. The batch's requests are
the first difference less the second (kruise-manager, the simulator and the service's own watch
keep talking in the background), keyed by (verb, resource, subresource) so the report can say
which requests a batch caused. The two ``/metrics`` reads fall in both intervals and cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.stats import Counts, median, parse_request_totals, subtract, total

# what a create through the service may send: pod read, CRR create, and (with auth) reviews
# and audit events; kruise-manager's own reactions (status writes, list/watch) are not these
SERVICE_REQUESTS = {
    ("GET", "pods", ""),
    ("POST", "containerrecreaterequests", ""),
    ("GET", "containerrecreaterequests", ""),
    ("POST", "tokenreviews", ""),
    ("POST", "subjectaccessreviews", ""),
    ("POST", "events", ""),
}


@dataclass(frozen=True, slots=True)
class CostFigure:
    label: str
    operations: int  # per repetition
    per_op: float  # every request, background subtracted, per operation (median of reps)
    per_op_own: float  # only the kinds in SERVICE_REQUESTS, per operation
    net: Counts  # the median repetition's background-subtracted counts
    quiet_per_second: float  # the background rate
    runs: int


def measure_cost(
    label: str,
    read_metrics: Callable[[], str],
    batch: Callable[[], int],
    *,
    repetitions: int,
    settle_seconds: float = 1.0,
    between: Callable[[], None] | None = None,
) -> CostFigure:
    """``batch()`` runs the operations and returns how many it ran; ``between()`` (cleaning
    up, say) runs after each repetition, outside the measured intervals."""
    per_op: list[float] = []
    own: list[float] = []
    nets: list[tuple[float, Counts]] = []
    quiet_rates: list[float] = []
    ops = 0
    for _ in range(repetitions):
        before = parse_request_totals(read_metrics())
        start = time.monotonic()
        ops = batch()
        time.sleep(settle_seconds)  # let kruise's reactions land inside the interval
        after = parse_request_totals(read_metrics())
        length = time.monotonic() - start
        quiet_before = parse_request_totals(read_metrics())
        time.sleep(length)
        quiet_after = parse_request_totals(read_metrics())
        active = subtract(after, before)
        quiet = subtract(quiet_after, quiet_before)
        net = subtract(active, quiet)
        per_op.append(total(net) / ops)
        own.append(sum(v for k, v in net.items() if k in SERVICE_REQUESTS) / ops)
        nets.append((per_op[-1], net))
        quiet_rates.append(total(quiet) / length)
        if between is not None:
            between()
    middle = median(per_op)
    net_of_median = min(nets, key=lambda pair: abs(pair[0] - middle))[1]
    return CostFigure(
        label=label,
        operations=ops,
        per_op=middle,
        per_op_own=median(own),
        net=net_of_median,
        quiet_per_second=median(quiet_rates),
        runs=repetitions,
    )
