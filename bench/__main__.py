"""``python -m bench`` (``make bench``): start a local control plane, the simulated node and
the service as a subprocess, measure, print a markdown report and write it to
``bench/results/<date>.md``. Stops everything at the end, on Ctrl-C and on SIGTERM.

``--quick`` runs every measurement small and short, to check the tooling.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType

import httpx

from bench import (
    cli,
    cli_start,
    cost,
    creates,
    env,
    fanout,
    followers,
    limit,
    pod_memory,
    polling,
    rollouts,
)
from bench.cluster import LONG_TTL, Service, World, auth_landed, bench_settings, wait
from bench.plan import Plan, plan_for
from bench.report import Results, render
from bench.wrk import ensure_wrk, run_wrk, wrk_version
from service.config import Settings
from service.core.crr import CRR_GROUP, CRR_PLURAL

SECTIONS = (
    "polling",
    "limit",
    "workers",
    "cost",
    "creates",
    "cli",
    "sse",
    "memory",
    "pods",
    "rollouts",
)
RESULTS = Path(__file__).resolve().parent / "results"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small and short: check tooling")
    parser.add_argument("--repetitions", type=int, help="runs per figure (median taken)")
    parser.add_argument("--poll-seconds", type=float, help="duration of one wrk run")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of {','.join(SECTIONS)}",
    )
    parser.add_argument("--out", type=Path, help="report file (default bench/results/<date>.md)")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def step(results: Results, name: str) -> Iterator[None]:
    """Run one section; a failure is reported and the next section still runs."""
    say(f"== {name}")
    start = time.monotonic()
    try:
        yield
    except KeyboardInterrupt:
        raise
    except Exception as e:
        say(traceback.format_exc())
        results.errors.append(f"{name}: {type(e).__name__}: {str(e)[:500]}")
    finally:
        say(f"== {name} took {time.monotonic() - start:.0f}s")


def create_via(url: str, namespace: str) -> Callable[[str], str]:
    def create(pod: str) -> str:
        resp = httpx.post(
            f"{url}/v1/namespaces/{namespace}/restarts",
            json={"pod": pod, "ttlSecondsAfterFinished": LONG_TTL},
            timeout=60,
        )
        if resp.status_code != 201:
            raise RuntimeError(f"create answered {resp.status_code}: {resp.text}")
        name: str = resp.json()["name"]
        return name

    return create


def run(args: argparse.Namespace, results: Results, workdir: Path) -> None:
    only = set(args.only.split(","))
    if only - {"rollouts", "pods"}:
        run_shared(args, results, workdir)
    if "pods" in only:  # in-process, no control plane
        with step(results, "4c. pod memory"):
            results.sections["pods"] = pod_memory.run_section(say)
    if "rollouts" in only:
        # last, on a control plane of its own: its audit log would weigh on the other figures
        with step(results, "6. rollouts"):
            rollouts.run_section(results, workdir, say)


def run_shared(args: argparse.Namespace, results: Results, workdir: Path) -> None:
    """Every section but rollouts, on one control plane."""
    plan: Plan = results.plan
    only = set(args.only.split(","))
    uses_wrk = bool(only & {"polling", "limit", "workers", "cost", "creates"})
    wrk = ensure_wrk() if uses_wrk else "wrk"

    tools = None
    if "cli" in only:
        # before the control plane starts: a Go build would load the cores the figures share,
        # and start-up times are best taken on a quiet machine
        tools = cli.find_tools(say)
        results.kruise_tools_error = tools.plugin_error
        with step(results, "5a. crr start-up"):
            results.cli_start = cli_start.run(plan.start_runs)

    world = World()
    services: list[Service] = []
    try:
        say("starting etcd, kube-apiserver, kruise-manager and the simulated node ...")
        world.start()
        results.environment = env.collect(
            world.plane.version(), wrk_version(wrk) if uses_wrk else "not used in this run"
        )
        ns_poll = world.namespace("bench-poll")
        ns_create = world.namespace("bench-create")
        ns_sse = world.namespace("bench-sse")
        say("creating pods ...")
        poll_pods = world.pods(ns_poll, 1, "poll")
        wanted = [plan.create_pods, plan.cost_creates] if only & {"cost", "creates"} else []
        wanted += [plan.cli_creates] if "cli" in only else []
        create_pods = world.pods(ns_create, max(wanted), "c") if wanted else []
        sse_pods = world.pods(
            ns_sse, followers.pods_needed(plan.follower_counts, plan.repetitions), "sse"
        )
        token = world.reader_token(ns_poll)

        service = Service(world, [ns_poll, ns_create, ns_sse], workdir).start()
        services.append(service)
        say(f"service up at {service.url} (pid {service.pid})")

        # one finished restart, the subject of every poll
        name = create_via(service.url, ns_poll)(poll_pods[0])

        def finished() -> bool:
            resp = httpx.get(f"{service.url}/v1/namespaces/{ns_poll}/restarts/{name}")
            return bool(resp.json()["finished"])

        wait("the polled restart to finish", finished, 120)
        world.sim.daemon_down = True  # from here on nothing churns in the background
        svc_target = polling.Target(
            "service", f"{service.url}/v1/namespaces/{ns_poll}/restarts/{name}"
        )
        api_target = polling.Target(
            "apiserver",
            f"{world.plane.url}/apis/{CRR_GROUP}/v1beta1/namespaces/{ns_poll}/{CRR_PLURAL}/{name}",
            token,
        )
        results.poll_sizes = {
            "service": len(httpx.get(svc_target.url).content),
            "apiserver": len(
                httpx.get(
                    api_target.url,
                    headers={"Authorization": f"Bearer {token}"},
                    verify=str(world.plane.pki.ca_cert),
                ).content
            ),
        }

        if "polling" in only:
            with step(results, "1. polling"):
                results.polling = polling.measure_polling(wrk, svc_target, api_target, plan, say)

        if only & {"limit", "workers"}:
            with step(results, "1b. polls near the server's limit"):
                near, workers = limit.run_section(
                    world, workdir, wrk, ns_poll, name, api_target, plan, only, say
                )
                size = results.poll_sizes["service"]
                results.sections["limit"] = limit.render(near, workers, size)

        if "cost" in only:
            with step(results, "2. apiserver cost"):
                measure_costs(
                    world,
                    service,
                    wrk,
                    (svc_target, api_target),
                    ns_create,
                    create_pods,
                    plan,
                    results,
                )

        if "creates" in only:
            with step(results, "3. creates"):
                results.creates = creates.measure_creates(
                    world, service.url, ns_create, create_pods, plan, say
                )
            if auth_landed():
                with step(results, "3b. creates with authentication"):
                    measure_auth(
                        world, workdir, wrk, ns_create, create_pods, plan, results, services
                    )
            else:
                results.notes.append(
                    "Authentication (issue 4) has not landed in service/config.py yet: every "
                    "figure is without caller authentication; the cached-review claim is not "
                    "measured."
                )

        if tools is not None:
            with step(results, "5b. one process per restart"):
                results.cli, results.per_process = cli.measure_cli(
                    world,
                    service.url,
                    ns_create,
                    create_pods[: plan.cli_creates],
                    plan.repetitions,
                    tools,
                    lambda pod: world.crr_body(ns_create, pod),
                    lambda: creates.clean(world, service.url, ns_create),
                    say,
                )

        if "sse" in only:
            with step(results, "4b. followers"):
                # a cap on connections above the most followers (the default is 2,048)
                cap = {"CRR_GATEWAY_MAX_CONNECTIONS": str(max(plan.follower_counts) + 200)}
                many = Service(world, [ns_sse], workdir, name="service-followers", env=cap)
                services.append(many.start())
                runs = followers.measure(
                    world, many, ns_sse, sse_pods, plan.follower_counts, plan.repetitions, say
                )
                many.stop()
                results.sections["followers"] = followers.render(runs)

        service.stop()
        if "memory" in only:
            with step(results, "4a. memory"):
                ns_mem = world.namespace("bench-mem")
                mem_pods = world.pods(ns_mem, plan.memory_pods, "m")
                spare = world.pods(ns_mem, 5, "spare")
                mem_service = Service(world, [ns_mem], workdir, name="service-mem").start()
                services.append(mem_service)
                _, results.memory = fanout.measure_memory(
                    world, mem_service, ns_mem, mem_pods, spare, plan.cache_sizes, say
                )
    finally:
        say("stopping ...")
        for svc in services:
            svc.stop()
        world.stop()


def measure_costs(
    world: World,
    service: Service,
    wrk: str,
    targets: tuple[polling.Target, polling.Target],
    namespace: str,
    pods: list[str],
    plan: Plan,
    results: Results,
) -> None:
    reps = plan.repetitions
    labels = ("status poll via the service", "status poll, direct apiserver GET")
    for label, target in zip(labels, targets, strict=True):

        def polls(target: polling.Target = target) -> int:
            ran = run_wrk(
                wrk, target.url, connections=50, seconds=plan.cost_seconds, token=target.token
            )
            return ran.ops

        results.costs.append(
            cost.measure_cost(label, world.request_totals_text, polls, repetitions=reps)
        )
        say(f"  {label}: {results.costs[-1].per_op:.4f} requests per poll")

    batch = pods[: plan.cost_creates]
    via_service = create_via(service.url, namespace)
    direct_api = world.new_client()

    def direct(pod: str) -> None:
        world.create_crr(direct_api, namespace, world.crr_body(namespace, pod))

    def clean() -> None:
        creates.clean(world, service.url, namespace)

    try:
        for label, one in (
            ("create via the service (warm)", via_service),
            ("create, direct python client", direct),
        ):

            def creates_batch(one: Callable[[str], object] = one) -> int:
                for pod in batch:
                    one(pod)
                return len(batch)

            one(batch[0])  # warm (discovery, connections), the same on both sides
            clean()
            figure = cost.measure_cost(
                label, world.request_totals_text, creates_batch, repetitions=reps, between=clean
            )
            results.costs.append(figure)
            say(f"  {label}: {figure.per_op:.3f} requests per create")
        if "record_events" in Settings.model_fields:
            # the audit Event on the pod (issue 4) is one request per create: show it apart
            quiet = Service(
                world,
                [namespace],
                service.workdir,
                name="service-no-events",
                env={"CRR_GATEWAY_RECORD_EVENTS": "false"},
            ).start()
            try:
                one_quiet = create_via(quiet.url, namespace)

                def quiet_batch() -> int:
                    for pod in batch:
                        one_quiet(pod)
                    return len(batch)

                one_quiet(batch[0])
                clean()
                figure = cost.measure_cost(
                    "create via the service, record_events=false (warm)",
                    world.request_totals_text,
                    quiet_batch,
                    repetitions=reps,
                    between=clean,
                )
                results.costs.append(figure)
                say(f"  {figure.label}: {figure.per_op:.3f} requests per create")
            finally:
                quiet.stop()
    finally:
        direct_api.close()


def measure_auth(
    world: World,
    workdir: Path,
    wrk: str,
    namespace: str,
    pods: list[str],
    plan: Plan,
    results: Results,
    services: list[Service],
) -> None:
    """The service with authentication ``kubernetes`` and a caller's service-account token:
    warm review caches should keep polls at 0 and creates at pod read + CRR create (+ the
    audit Event) apiserver requests."""
    token = world.caller_token(namespace)
    svc = Service(
        world,
        [namespace],
        workdir,
        name="service-auth",
        env={"CRR_GATEWAY_AUTH_MODE": "kubernetes"},
    ).start()
    services.append(svc)
    headers = {"Authorization": f"Bearer {token}"}

    def clean() -> None:
        creates.clean(world, svc.url, namespace, token)

    def create(client: httpx.Client, pod: str) -> str:
        resp = client.post(
            f"/v1/namespaces/{namespace}/restarts",
            json={"pod": pod, "ttlSecondsAfterFinished": LONG_TTL},
        )
        if resp.status_code != 201:
            raise RuntimeError(f"create answered {resp.status_code}: {resp.text}")
        name: str = resp.json()["name"]
        return name

    try:
        with httpx.Client(base_url=svc.url, headers=headers, timeout=60) as client:

            def service_creates() -> int:
                batch = pods[: plan.cost_creates]
                for pod in batch:
                    create(client, pod)
                return len(batch)

            create(client, pods[0])  # one create warms the review caches, as a steady caller
            clean()
            figure = cost.measure_cost(
                "create via the service, auth kubernetes (warm)",
                world.request_totals_text,
                service_creates,
                repetitions=plan.repetitions,
                between=clean,
            )
            results.costs.append(figure)
            say(f"  {figure.label}: {figure.per_op:.3f} requests per create")

            name = create(client, pods[0])
            url = f"{svc.url}/v1/namespaces/{namespace}/restarts/{name}"
            run_wrk(wrk, url, connections=50, seconds=1, token=token)  # warm

            def polls() -> int:
                ran = run_wrk(wrk, url, connections=50, seconds=plan.cost_seconds, token=token)
                return ran.ops

            figure = cost.measure_cost(
                "status poll via the service, auth kubernetes",
                world.request_totals_text,
                polls,
                repetitions=plan.repetitions,
            )
            results.costs.append(figure)
            say(f"  {figure.label}: {figure.per_op:.4f} requests per poll")
            clean()
        results.creates_auth = creates.measure_creates(
            world, svc.url, namespace, pods, plan, say, token=token
        )
    finally:
        svc.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plan = plan_for(args.quick, repetitions=args.repetitions, poll_seconds=args.poll_seconds)
    started = datetime.now().astimezone()
    command = " ".join([".venv/bin/python -m bench", *(sys.argv[1:] if argv is None else argv)])
    results = Results(started=started.strftime("%Y-%m-%d %H:%M %Z"), command=command, plan=plan)
    if args.quick:
        results.notes.append("--quick: a small, short run to check the tooling; not figures.")
    changed = ", ".join(f"`{k}={v}`" for k, v in bench_settings().items())
    if changed:
        results.notes.append(
            f"Service settings changed from the defaults for the bench: {changed} (the rate "
            "limit and the cap would refuse a benchmark's creates by design)."
        )
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started ignoring it
    workdir = Path(tempfile.mkdtemp(prefix="crr-bench-"))
    interrupted = False
    try:
        run(args, results, workdir)
    except KeyboardInterrupt:
        interrupted = True
        results.errors.append("interrupted")
        say("interrupted; everything is stopped")
    except Exception as e:
        say(traceback.format_exc())
        results.errors.append(f"setup: {type(e).__name__}: {str(e)[:500]}")
    report = render(results)
    print(report)
    out = args.out or RESULTS / f"{started.strftime('%Y-%m-%d-%H%M')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    say(f"report written to {out} (service logs in {workdir})")
    return 130 if interrupted else (1 if results.errors else 0)


if __name__ == "__main__":
    sys.exit(main())
