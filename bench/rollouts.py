"""6. Rollouts: container ``app`` of every pod of a CloneSet restarted three ways in one run
(``bench/restart_ways.py``): a crr-gateway rollout with a ``maxUnavailable`` budget, one restart
at a time through the service with ``?wait``, and ``kubectl create -f`` of a CRR per pod with a
``kubectl get`` poll loop.

The section has a control plane of its own, started with the apiserver's audit log on
(``bench/audit.py``): that log says which requests came from which client, and the other
sections are measured without its cost. The CloneSet's pods are made by the real kruise-manager
and run by the simulated node; their readiness gate ``KruisePodReady`` takes a pod out of Ready
while kruise restarts its containers, as it would take it out of a Service's endpoints.

Each way gets a CloneSet of its own, made just before it and removed after it (scaled to 0,
then deleted with every CRR), and starts once all its pods are Ready. Fresh containers matter:
the kubelet (and the simulated one) starts a container that exited again after its
CrashLoopBackOff delay, nothing the first time but 10 s for the next exit within ten minutes
and 20 s for the one after; three ways on the same pods would measure that back-off, not the
ways. Each way is watched by ``bench/readiness.py``: the most pods not Ready at once is its
peak. Wall
time runs from the first request to seeing the last restart finished (the rollout: from the
POST to the long poll that returns it ``Succeeded``). Requests are those the apiserver's audit
log holds from the way's client (the service's user agent for ways 1 and 2, kubectl's for way
3), received from the first request until two seconds after the end. Afterwards every pod's
containers are read back: ``app`` must have restarted once and the other container not at all.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import env, restart_ways
from bench.audit import AuditLog
from bench.cli import plain_kubectl
from bench.cluster import Service, World, wait
from bench.plan import Plan
from bench.readiness import ReadinessWatch, wait_all_ready
from bench.report import Results
from bench.restart_chain import Chain, RestartChainWatch, chain
from bench.stats import Counts, describe_counts, fmt, fmt_ratio, median, ratio, table, total
from harness.controlplane import ControlPlane
from service.core.crr import CRR_GROUP, CRR_PLURAL
from service.kube.adapter import USER_AGENT

Say = Callable[[str], None]

NAMESPACE = "bench-rollout"
SIDECAR = "sidecar"
GRACE_SECONDS = 2  # the pods' terminationGracePeriodSeconds
SETTLE_SECONDS = 2.0  # after a way ends, before its requests are counted
SERVICE_AGENT = USER_AGENT.split("/")[0] + "/"
KUBECTL_AGENT = "kubectl"  # kubectl/v1.32..., or kubectl.1.32/... when run by that name


def cloneset(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "readinessGates": [{"conditionType": "KruisePodReady"}],
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "containers": [
                        {"name": restart_ways.CONTAINER, "image": "example.test/shop:1.0"},
                        {"name": SIDECAR, "image": "example.test/sidecar:1.0"},
                    ],
                },
            },
        },
    }


@dataclass(frozen=True, slots=True)
class WayRun:
    label: str
    pods: int
    seconds: float
    per_pod: list[float]  # each pod's restart, first request to seen finished (ways 2 and 3)
    peak_unavailable: int
    went_unready: int  # pods seen going from Ready to not
    requests: Counts  # from the way's own client
    client: str  # whose requests
    restarts_ok: str  # what reading the containers back found
    load: tuple[float, float]  # 1-minute load average before and after
    chain: Chain  # where each restart's time went (bench/restart_chain.py)
    in_use: float  # restarts under way (created → Ready again), time-averaged, / allowed

    @property
    def per_restart(self) -> float:
        return total(self.requests) / self.pods


# ------------------------------------------------------------------ the pods


def containers(world: World, workload: str) -> dict[str, dict[str, tuple[str, int]]]:
    """pod -> container -> (containerID, restartCount), for the CloneSet's pods."""
    resp = world.core.list_namespaced_pod(
        NAMESPACE, label_selector=f"app={workload}", _preload_content=False
    )
    return {
        p["metadata"]["name"]: {
            s["name"]: (s.get("containerID", ""), s.get("restartCount", 0))
            for s in p["status"].get("containerStatuses") or []
        }
        for p in json.loads(resp.data)["items"]
    }


def check_restarts(
    before: dict[str, dict[str, tuple[str, int]]], after: dict[str, dict[str, tuple[str, int]]]
) -> str:
    """'each pod: app once, sidecar never', or what differed."""
    wanted = {restart_ways.CONTAINER: 1, SIDECAR: 0}
    odd = []
    if set(after) != set(before):
        odd.append(f"pods changed: {sorted(set(before) ^ set(after))}")
    for pod in sorted(set(before) & set(after)):
        for name, want in wanted.items():
            (old_id, old_n), (new_id, new_n) = before[pod][name], after[pod][name]
            if new_n - old_n != want or (new_id != old_id) != bool(want):
                odd.append(f"{pod}/{name} restarted {new_n - old_n}x")
    if odd:
        return "NOT as asked: " + ", ".join(odd[:10])
    return f"each of {len(after)} pods: `{restart_ways.CONTAINER}` once, `{SIDECAR}` never"


def fresh_pods(world: World, workload: str, replicas: int) -> ReadinessWatch:
    """A new CloneSet; returns the witness of its pods once every one is Ready."""
    world.custom.create_namespaced_custom_object(
        "apps.kruise.io", "v1alpha1", NAMESPACE, "clonesets", cloneset(workload, replicas)
    )
    witness = ReadinessWatch(world.plane, NAMESPACE, f"app={workload}").start()
    try:
        wait_all_ready(witness, replicas, 120 + 2 * replicas)
    except BaseException:
        witness.stop()
        raise
    return witness


def settle(world: World, witness: ReadinessWatch, pods: int) -> None:
    """Every pod Ready and every restart finished."""
    wait_all_ready(witness, pods, 300)

    def all_done() -> bool:
        listed = world.custom.list_namespaced_custom_object(
            CRR_GROUP, restart_ways.CRR_VERSION, NAMESPACE, CRR_PLURAL
        )
        return all((c.get("status") or {}).get("phase") == "Completed" for c in listed["items"])

    wait("every restart to finish", all_done, 300, 0.5)


def remove(world: World, workload: str) -> None:
    """The CloneSet scaled to 0 (kruise-manager deletes its pods: no garbage collector runs
    here), its pods gone, then it and every CRR deleted, so the next way starts alone."""
    world.custom.patch_namespaced_custom_object(
        "apps.kruise.io", "v1alpha1", NAMESPACE, "clonesets", workload, {"spec": {"replicas": 0}}
    )
    wait(f"the pods of {workload} to go", lambda: not containers(world, workload), 120, 0.5)
    world.custom.delete_namespaced_custom_object(
        "apps.kruise.io", "v1alpha1", NAMESPACE, "clonesets", workload
    )
    world.delete_crrs(NAMESPACE)


# ------------------------------------------------------------------ one way, measured


@dataclass(frozen=True, slots=True)
class Way:
    label: str
    workload: str  # its own CloneSet, so every way restarts fresh containers
    client: str  # whose requests count
    sent_by: Callable[[str], bool]  # that client's user agent
    run: Callable[[str, list[str]], list[float]]  # (workload, pod names) -> per-pod seconds
    warm: Callable[[str, list[str]], None]  # the same, untimed and restarting nothing
    concurrency: int  # restarts it allows under way at once
    next_after: str  # what it waits for before the next restart: "ready" or "completed"


def in_use(
    run_chain: dict[str, dict[str, float]], ready_at: dict[str, float], way: Way, seconds: float
) -> float:
    """The restarts under way (from create until the pod is Ready again), averaged over the
    wall time, as a share of what the way allows at once: 1.0 would be no time lost between
    restarts."""
    busy = sum(
        ready_at[pod] - times["created"]
        for pod, times in run_chain.items()
        if "created" in times and pod in ready_at
    )
    return busy / (way.concurrency * seconds) if seconds > 0 else 0.0


def measure_way(
    way: Way, world: World, replicas: int, audit: AuditLog, stages: RestartChainWatch, say: Say
) -> WayRun:
    say(f"  {way.label}: {replicas} fresh pods ...")
    witness = fresh_pods(world, way.workload, replicas)
    try:
        before = containers(world, way.workload)
        names = sorted(before)
        way.warm(way.workload, names)
        load_before = os.getloadavg()[0]
        audit.skip_to_end()
        witness.begin()
        stages.begin()
        since = datetime.now(UTC)
        started = time.perf_counter()
        per_pod = way.run(way.workload, names)
        seconds = time.perf_counter() - started
        time.sleep(SETTLE_SECONDS)  # the way's last requests land in the log
        requests = audit.requests(way.sent_by, since, datetime.now(UTC))
        load = (load_before, os.getloadavg()[0])
        settle(world, witness, len(names))
        window = witness.window()  # after settle: every pod's return to Ready is in it
        seen = stages.stages()
    finally:
        witness.stop()
    run = WayRun(
        label=way.label,
        pods=len(names),
        seconds=seconds,
        per_pod=per_pod,
        peak_unavailable=window.peak,
        went_unready=len(window.went_unready),
        requests=requests,
        client=way.client,
        restarts_ok=check_restarts(before, containers(world, way.workload)),
        load=load,
        chain=chain(seen, window, next_after=way.next_after),
        in_use=in_use(seen, window.ready_again_at, way, seconds),
    )
    remove(world, way.workload)
    say(
        f"  {way.label}: {seconds:.1f} s, peak unavailable {run.peak_unavailable}, "
        f"{run.per_restart:.2f} requests per pod ({describe_counts(requests, run.pods)}); "
        f"{run.restarts_ok}"
    )
    return run


# ------------------------------------------------------------------ the section


def ways(http: httpx.Client, kubectl: str, kubeconfig: Path, plan: Plan, say: Say) -> list[Way]:
    budget = plan.rollout_max_unavailable
    service = SERVICE_AGENT

    def rollout(workload: str, names: list[str]) -> list[float]:
        timeout = 60 + 20 * len(names)
        done = restart_ways.rollout(http, NAMESPACE, workload, budget, timeout)
        if done["counts"]["Succeeded"] != len(names):
            raise RuntimeError(f"the rollout restarted {done['counts']} of {len(names)} pods")
        return []  # no per-pod times: the pods overlap

    return [
        Way(
            f"crr-gateway rollout, maxUnavailable {budget}",
            "shop-rollout",
            "the service",
            lambda agent: agent.startswith(service),
            rollout,
            lambda workload, _names: restart_ways.warm_rollout(http, NAMESPACE, workload),
            budget,
            "ready",
        ),
        Way(
            "one restart at a time via the service, `?wait` long polls",
            "shop-one",
            "the service",
            lambda agent: agent.startswith(service),
            lambda _workload, names: restart_ways.one_at_a_time(http, NAMESPACE, names, say),
            lambda _workload, names: restart_ways.warm_one(http, NAMESPACE, names[0]),
            1,
            "completed",
        ),
        Way(
            f"`kubectl create -f` + `kubectl get` every {plan.kubectl_poll_seconds:g} s",
            "shop-kubectl",
            "kubectl",
            lambda agent: agent.startswith(KUBECTL_AGENT),
            lambda _workload, names: restart_ways.kubectl_loop(
                kubectl, kubeconfig, NAMESPACE, names, plan.kubectl_poll_seconds, say
            ),
            lambda _workload, _names: restart_ways.warm_kubectl(kubectl, kubeconfig, NAMESPACE),
            1,
            "completed",
        ),
    ]


def run_section(results: Results, workdir: Path, say: Say) -> list[WayRun]:
    plan: Plan = results.plan
    kubectl, kubectl_note = plain_kubectl()
    audit = AuditLog(workdir / "rollouts-audit")
    world = World(plane=ControlPlane(extra_apiserver_args=audit.apiserver_args()))
    service: Service | None = None
    stages: RestartChainWatch | None = None
    runs: list[WayRun] = []
    try:
        say("starting a control plane with the audit log on, and the simulated node ...")
        world.start()
        if results.environment is None:
            results.environment = env.collect(world.plane.version(), "not used in this run")
        world.namespace(NAMESPACE)
        service = Service(world, [NAMESPACE], workdir, name="service-rollouts").start()
        stages = RestartChainWatch(world.plane, NAMESPACE).start()
        timeout = restart_ways.LONG_POLL_SECONDS + 30
        with httpx.Client(base_url=service.url, timeout=timeout) as http:
            for way in ways(http, kubectl, world.plane.kubeconfig, plan, say):
                runs.append(measure_way(way, world, plan.rollout_pods, audit, stages, say))
        versions = [f"kubectl {restart_ways.kubectl_version(kubectl)}"]
        results.sections["rollouts"] = render(
            runs, plan, [*versions, *filter(None, [kubectl_note])]
        )
    finally:
        if stages is not None:
            stages.stop()
        if service is not None:
            service.stop()
        world.stop()
    return runs


# ------------------------------------------------------------------ the report


def held(peak: int, budget: int) -> str:
    if peak > budget:
        return "OVER BUDGET"
    return "never over budget; " + ("budget used" if peak == budget else "budget not reached")


STAGE_ROWS = (
    "created → not Ready",
    "not Ready → killed",
    "killed → running again",
    "running again → Completed",
    "Completed → Ready",
    "created → Ready",
)


def chain_table(runs: list[WayRun]) -> str:
    rows = [
        [stage, *(fmt(run.chain.stages.get(stage, math.nan), 2) for run in runs)]
        for stage in STAGE_ROWS
    ]
    rows.append(
        [
            "then the next restart created, after its predecessor was Ready (rollout) or "
            "Completed (the others)",
            *(
                fmt(run.chain.to_next if run.chain.to_next is not None else math.nan, 2)
                for run in runs
            ),
        ]
    )
    rows.append(
        [
            "restarts under way, time-averaged, / allowed at once",
            *(fmt(run.in_use, 2) for run in runs),
        ]
    )
    return table(["stage", *(run.label for run in runs)], rows)


def render(runs: list[WayRun], plan: Plan, versions: list[str]) -> str:
    if not runs:
        return ""
    rollout, one_by_one = runs[0], runs[1]
    rows = []
    for run in runs:
        rows.append(
            [
                run.label,
                str(run.pods),
                fmt(run.seconds, 1),
                fmt_ratio(ratio(run.seconds, rollout.seconds)),
                fmt(median(run.per_pod), 2) if run.per_pod else "-",
                str(run.peak_unavailable),
                f"{fmt(run.per_restart, 2)} ({run.client})",
                f"{run.load[0]:.1f} / {run.load[1]:.1f}",
            ]
        )
    speedup = ratio(one_by_one.seconds, rollout.seconds)
    budget = plan.rollout_max_unavailable
    verdicts = [
        f"rollout vs one at a time: {fmt_ratio(speedup)} faster (target at least 4x: "
        f"{'met' if speedup >= 4 else 'NOT met'})",
        f"rollout peak unavailable {rollout.peak_unavailable} with maxUnavailable {budget} "
        f"({held(rollout.peak_unavailable, budget)})",
        f"service requests per pod restarted by the rollout: {rollout.per_restart:.2f} (target "
        f"at most 3: {'met' if rollout.per_restart <= 3 else 'NOT met'})",
    ]
    return "\n".join(
        [
            "## 6. Rollouts: a workload's pods restarted in place three ways",
            "",
            f"A CloneSet of {plan.rollout_pods} pods (real kruise-manager, simulated node), "
            f"containers `{restart_ways.CONTAINER}` and `{SIDECAR}`, readiness gate "
            f"`KruisePodReady`, `terminationGracePeriodSeconds: {GRACE_SECONDS}` (the simulated "
            "processes exit at once on SIGTERM, so no restart waits the grace period out). "
            f"Container `{restart_ways.CONTAINER}` of every pod restarted three ways in this "
            "order, each on a fresh CloneSet of its own (a container's second exit within ten "
            "minutes would wait out the kubelet's 10 s CrashLoopBackOff), with the service's "
            "default strategy "
            "(`unreadyGracePeriodSeconds: 3`: kruise holds a pod unready 3 s before the kill). "
            "Peak unavailable: the most pods not Ready at once, seen by an independent pod "
            "watch. Requests: the apiserver's audit log, the way's own client only.",
            "",
            table(
                [
                    "way",
                    "pods",
                    "wall s",
                    "vs rollout",
                    "per pod s (median)",
                    "peak unavailable",
                    "apiserver requests per pod",
                    "load before / after",
                ],
                rows,
            ),
            "",
            "Where each restart's time went, medians over the pods in seconds "
            "(`bench/restart_chain.py`: the bench's own watches of the CRRs and the pods):",
            "",
            chain_table(runs),
            "",
            *[f"- {run.label}: {describe_counts(run.requests, run.pods)}" for run in runs],
            *[f"- {run.label}: {run.restarts_ok}" for run in runs],
            *[f"- {v}" for v in verdicts],
            *[f"- {v}" for v in versions],
        ]
    )
