"""One process per restart: the command lines a person or a CI job runs to restart a pod's
containers, each timed from just before its process is started to just after it exits.

Rows, all in one run on the same pods (none of them has container ports), in blocks: each block
restarts every pod once with one command, every CRR is then deleted, and the next command takes
the same pods; the order of the commands rotates from block to block, so the machine's load and
any drift fall on all of them alike. One untimed run of each command first (page cache, kubectl's
discovery cache), as a user's second command would find them.

- ``curl -X POST`` to the service: the request ``crr`` sends, written by hand.
- ``crr restart`` (the stdlib client in ``client/``, ``.venv/bin/crr``): a Python start-up,
  then the same POST; exit 0 once the service accepted it (no ``--wait``).
- ``kubectl kruise create ContainerRecreateRequest`` (kruise-tools, see bench/kruise_plugin.py):
  kubectl finds ``kubectl-kruise`` on PATH and executes it; the plugin reads the pod (three GETs
  by its source) and POSTs the CRR. Also timed as the plugin binary alone.
- ``kubectl create -f -`` of the CRR manifest the service would build.

And ``kubectl kruise create`` on a pod *with* container ports, which kruise's webhook refuses:
the plugin copies each container's ``ports`` into the CRR, and the webhook takes them for
read-only fields set by the client. Its wall time is a row; nothing is created.

Before the timing, what kruise-tools does is looked at in the same run and reported: the CRRs
it creates for ``--containers=app`` and for a container the pod does not have (read back with
kubectl), and what it does on pods with ports, a preStop hook, or a postStart hook only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.cluster import World, pod_manifest, pod_running, wait
from bench.kruise_plugin import BuildError, Plugin, ensure_plugin
from bench.stats import Figure, Run, run_from_latencies

Say = Callable[[str], None]

ROOT = Path(__file__).resolve().parent.parent
CRR = ROOT / ".venv" / "bin" / "crr"
KUBECTL_ENV = "CRR_BENCH_KUBECTL"  # a kubectl to use instead of the one on PATH
ASKED_CONTAINER = "app"  # what `kubectl kruise create --containers=` asks for
TIMEOUT_S = 60.0
CRR_RESOURCE = "containerrecreaterequests.apps.kruise.io"
# As people run crr: with bytecode cached (as bench/cli_start.py does); where the environment
# sets PYTHONDONTWRITEBYTECODE, the client's modules would be compiled again on every start.
ENVIRON = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True, slots=True)
class Command:
    """One row: ``argv(pod)`` gives a fresh command line (new names and keys every call);
    ``problem(result)`` says why a finished process is not the expected outcome, or None."""

    label: str
    measures: str
    argv: Callable[[str], list[str]]
    problem: Callable[[subprocess.CompletedProcess[str]], str | None]
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: Callable[[str], str] | None = None  # pod -> what the process reads on stdin


@dataclass
class CliDetail:
    """What the per-process table needs beside its figures (``Results.per_process``)."""

    measures: dict[str, str] = field(default_factory=dict)  # label -> what one run does
    observations: list[str] = field(default_factory=list)  # what the commands did, as seen
    versions: list[str] = field(default_factory=list)  # "curl 7.88.1", ...
    load: tuple[float, float] | None = None  # 1-minute load average before and after timing


# ------------------------------------------------------------------ tools


@dataclass(frozen=True, slots=True)
class Tools:
    kubectl: str
    kubectl_note: str | None  # which kubectl, when it is not the one on PATH
    plugin: Plugin | None
    plugin_error: str | None


def _output(argv: Sequence[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    return (done.stdout or done.stderr).strip()


def plain_kubectl() -> tuple[str, str | None]:
    """The kubectl to time: ``$CRR_BENCH_KUBECTL``, else the one on PATH as users run it, and
    a note for the report when it is not the one on PATH."""
    chosen = os.environ.get(KUBECTL_ENV)
    if chosen:
        return chosen, f"kubectl from ${KUBECTL_ENV}: `{chosen}`"
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is not installed")
    return found, None


def find_tools(say: Say) -> Tools:
    """Run before the control plane starts: a Go build would load the cores it shares."""
    kubectl, note = plain_kubectl()
    try:
        plugin: Plugin | None = ensure_plugin(say)
        error = None
    except BuildError as e:
        plugin, error = None, str(e)
    return Tools(kubectl, note, plugin, error)


def versions(tools: Tools) -> list[str]:
    kubectl = json.loads(_output([tools.kubectl, "version", "--client", "-o", "json"]))
    found = [
        _output(["curl", "--version"]).splitlines()[0].split(" (")[0],  # "curl 7.88.1"
        _output([str(CRR), "--version"]),  # "crr 0.1.0"
        f"kubectl {kubectl['clientVersion']['gitVersion']}",
    ]
    if tools.plugin is not None:
        found.append(
            f"kubectl-kruise from github.com/openkruise/kruise-tools {tools.plugin.version} "
            f"(built here with {tools.plugin.go}, CGO_ENABLED=0)"
        )
    return found


# ------------------------------------------------------------------ the rows


def _exit_zero(result: subprocess.CompletedProcess[str]) -> str | None:
    if result.returncode == 0:
        return None
    return f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-300:]}"


def _answered_201(result: subprocess.CompletedProcess[str]) -> str | None:
    return _exit_zero(result) or (
        None if result.stdout.strip() == "201" else f"answered {result.stdout.strip()}"
    )


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def service_commands(service_url: str, namespace: str) -> list[Command]:
    """curl and crr send the same request: ``{"pod": P}`` with an Idempotency-Key."""
    url = f"{service_url}/v1/namespaces/{namespace}/restarts"

    def curl(pod: str) -> list[str]:
        return [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            f"Idempotency-Key: {_fresh('bench')}",
            "--data-binary",
            json.dumps({"pod": pod}),
            url,
        ]

    def crr(pod: str) -> list[str]:
        return [str(CRR), "restart", f"{namespace}/{pod}", "--idempotency-key", _fresh("bench")]

    return [
        Command(
            "`curl -X POST` to the service",
            "curl's start, one POST with an Idempotency-Key, 201",
            curl,
            _answered_201,
        ),
        Command(
            "`crr restart NS/POD --idempotency-key K`",
            "a Python start (`.venv/bin/crr`), the same POST, exit 0 on 201 (no `--wait`)",
            crr,
            _exit_zero,
            env={"CRR_GATEWAY_URL": service_url},
        ),
    ]


def kruise_argv(prefix: Sequence[str], namespace: str, pod: str, name: str) -> list[str]:
    """``prefix`` is ``[kubectl, "kruise"]`` as a user types it, or the plugin binary alone."""
    return [
        *prefix,
        "create",
        "ContainerRecreateRequest",
        name,
        f"--namespace={namespace}",
        f"--pod={pod}",
        f"--containers={ASKED_CONTAINER}",
    ]


PORTS_REFUSED = "ports"  # in the webhook's message: preStop, ports, ... are read-only fields


def _refused_for_ports(result: subprocess.CompletedProcess[str]) -> str | None:
    if result.returncode != 0 and PORTS_REFUSED in result.stderr:
        return None
    return (
        f"expected the webhook's refusal, got exit {result.returncode}: "
        + ((result.stderr or result.stdout).strip()[-300:])
    )


def kubectl_commands(
    tools: Tools,
    kubeconfig: Path,
    namespace: str,
    manifest: Callable[[str], dict[str, Any]],
    ports_pod: str,
) -> list[Command]:
    """The kubectl rows; the last plugin row runs on ``ports_pod`` whatever pod it is given."""
    env = {"KUBECONFIG": str(kubeconfig)}
    commands = []
    if tools.plugin is not None:
        # kubectl looks plugins up on PATH: the cached binary's directory holds only it
        path = f"{tools.plugin.binary.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        via_kubectl = [tools.kubectl, "kruise"]
        alone = [str(tools.plugin.binary)]
        commands += [
            Command(
                "`kubectl kruise create ContainerRecreateRequest NAME --pod=P --containers=app`",
                "kubectl's start, which finds `kubectl-kruise` on PATH and executes it; the "
                "plugin's start, three GETs of the pod (by its source) and the CRR POST",
                lambda pod: kruise_argv(via_kubectl, namespace, pod, _fresh(pod)),
                _exit_zero,
                env={**env, "PATH": path},
            ),
            Command(
                "`kubectl-kruise create ContainerRecreateRequest ...`, the plugin alone",
                "the same without kubectl in front",
                lambda pod: kruise_argv(alone, namespace, pod, _fresh(pod)),
                _exit_zero,
                env=env,
            ),
            Command(
                "`kubectl kruise create ...` on a pod **with** container ports (refused)",
                "as the first kubectl kruise row, on a pod whose containers declare a port; "
                "kruise's webhook refuses the CRR (exit 1, nothing created)",
                lambda _pod: kruise_argv(via_kubectl, namespace, ports_pod, _fresh(ports_pod)),
                _refused_for_ports,
                env={**env, "PATH": path},
            ),
        ]
    commands.append(
        Command(
            "`kubectl create -f -` of a hand-written CRR manifest",
            "kubectl's start, discovery from its disk cache, the CRR POST",
            lambda _pod: [tools.kubectl, "create", "-f", "-", "-o", "name"],
            _exit_zero,
            env=env,
            stdin=lambda pod: json.dumps(manifest(pod)),
        )
    )
    return commands


# ------------------------------------------------------------------ timing


def run_once(command: Command, pod: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time in ms from just before the process starts to just after it exited."""
    argv = command.argv(pod)
    stdin = command.stdin(pod) if command.stdin is not None else None
    env = {**ENVIRON, **command.env}
    started = time.perf_counter()
    result = subprocess.run(
        argv, input=stdin, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    return (time.perf_counter() - started) * 1000, result


def measure(
    commands: Sequence[Command],
    pods: Sequence[str],
    blocks: int,
    clean_up: Callable[[], None],
    say: Say,
) -> dict[str, Figure]:
    """Per command: the median (and slowest) of each block of ``len(pods)`` runs, then the
    median of those over the blocks (``Figure.of``)."""
    for command in commands:  # untimed: page cache, discovery cache, the service's caches
        _, result = run_once(command, pods[0])
        if (problem := command.problem(result)) is not None:
            raise RuntimeError(f"{command.label} failed on its warm-up run: {problem}")
        clean_up()
    runs: dict[str, list[Run]] = {c.label: [] for c in commands}
    for block in range(blocks):
        turn = block % len(commands)
        for command in [*commands[turn:], *commands[:turn]]:
            latencies, errors = [], []
            started = time.perf_counter()
            for pod in pods:
                ms, result = run_once(command, pod)
                problem = command.problem(result)
                if problem is None:
                    latencies.append(ms / 1000)
                else:
                    errors.append(problem)
            run = run_from_latencies(latencies, time.perf_counter() - started, errors=len(errors))
            clean_up()
            runs[command.label].append(run)
            say(
                f"  block {block + 1} {command.label}: median {run.p50_ms:.1f} ms, slowest "
                f"{run.p99_ms:.1f} ms" + (f", {len(errors)} failed: {errors[0]}" if errors else "")
            )
    return {label: Figure.of(r) for label, r in runs.items()}


# ------------------------------------------------------------------ what kruise-tools does


def _ports(container: dict[str, Any], index: int) -> None:
    container["ports"] = [{"name": f"p{8080 + index}", "containerPort": 8080 + index}]


def _pre_stop(container: dict[str, Any], index: int) -> None:
    if index == 0:
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "1"]}}}


def _post_start_only(container: dict[str, Any], index: int) -> None:
    if index == 0:
        container["lifecycle"] = {"postStart": {"exec": {"command": ["true"]}}}


# Pods unlike the bench's in one way each. kruise-tools v1.2.2 (create_crr.go) copies every
# container's ports and lifecycle.preStop into the CRR it builds; kruise's webhook takes both
# for read-only fields set by the client.
ODD_PODS: dict[str, tuple[str, Callable[[dict[str, Any], int], None]]] = {
    "ports": ("whose containers declare ports", _ports),
    "prestop": ("with a preStop hook", _pre_stop),
    "poststart": ("with a postStart hook and no preStop", _post_start_only),
}
PORTS_POD = "odd-ports"


def odd_pod(world: World, namespace: str, kind: str) -> str:
    """A running pod like the bench's others but for what ``ODD_PODS[kind]`` changes."""
    name = f"odd-{kind}"
    manifest = pod_manifest(name)
    for index, container in enumerate(manifest["spec"]["containers"]):
        ODD_PODS[kind][1](container, index)
    world.core.create_namespaced_pod(namespace, manifest)

    def running() -> bool:
        resp = world.core.read_namespaced_pod(name, namespace, _preload_content=False)
        return pod_running(json.loads(resp.data))

    wait(f"pod {name} running", running, 60, 0.5)
    return name


def get_crr(kubectl: str, kubeconfig: Path, namespace: str, name: str) -> dict[str, Any] | None:
    """The CRR as ``kubectl get -o json`` shows it (the storage version), None if missing."""
    argv = [kubectl, "get", CRR_RESOURCE, name, "--namespace", namespace, "--output", "json"]
    argv.append("--ignore-not-found")
    done = subprocess.run(
        argv,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT_S,
    )
    crr: dict[str, Any] | None = json.loads(done.stdout) if done.stdout.strip() else None
    return crr


@dataclass(frozen=True, slots=True)
class KruiseOutcome:
    exit_code: int
    message: str  # the first line it printed on stderr ("" on success)
    crr: dict[str, Any] | None  # what it created, as stored


def try_kruise(
    command: Command, tools: Tools, kubeconfig: Path, namespace: str, pod: str
) -> KruiseOutcome:
    """Run one ``kubectl kruise create`` on ``pod`` and look for the CRR it named. kruise's
    webhook reads pods from its informer, where a pod created a moment ago can still be "not
    found": that answer is retried."""

    def attempt() -> KruiseOutcome | None:
        argv = command.argv(pod)
        name = argv[argv.index("ContainerRecreateRequest") + 1]
        env = {**ENVIRON, **command.env}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if "no found Pod" in done.stderr:
            return None
        first = done.stderr.strip().splitlines()[0] if done.stderr.strip() else ""
        return KruiseOutcome(
            done.returncode, first, get_crr(tools.kubectl, kubeconfig, namespace, name)
        )

    outcome: KruiseOutcome = wait(f"kubectl kruise create on {pod}", attempt, 30, 0.5)
    return outcome


def _names(crr: dict[str, Any] | None) -> str:
    containers = crr["spec"]["containers"] if crr else []
    return ", ".join(c["name"] for c in containers) or "none"


def _asking_for(argv: Callable[[str], list[str]], container: str) -> Callable[[str], list[str]]:
    def changed(pod: str) -> list[str]:
        flag = "--containers="
        return [f"{flag}{container}" if a.startswith(flag) else a for a in argv(pod)]

    return changed


def observe_kruise(
    command: Command, tools: Tools, kubeconfig: Path, namespace: str, pod: str
) -> list[str]:
    """What ``kubectl kruise create`` does with ``--containers`` and with pods unlike ours,
    as seen on the CRRs it created (read back with kubectl) and in what it printed."""
    notes = []
    pod_has = ", ".join(c["name"] for c in pod_manifest(pod)["spec"]["containers"])
    for asked in (ASKED_CONTAINER, "no-such-container"):
        asking = replace(command, argv=_asking_for(command.argv, asked))
        seen = try_kruise(asking, tools, kubeconfig, namespace, pod)
        if seen.crr is None:
            verdict = f"exit {seen.exit_code}, nothing created: `{seen.message}`"
        else:
            listed = _names(seen.crr)
            verdict = f"exit {seen.exit_code}, created a CRR for {listed}" + (
                "" if listed == asked else " (the flag is not read)"
            )
        notes.append(
            f"`kubectl kruise create ... --containers={asked}` on a pod with containers "
            f"{pod_has}: {verdict}"
        )
    for kind, (description, _change) in ODD_PODS.items():
        seen = try_kruise(command, tools, kubeconfig, namespace, f"odd-{kind}")
        verdict = f"created a CRR for {_names(seen.crr)}" if seen.crr else "nothing created"
        notes.append(
            f"`kubectl kruise create` on a pod {description}: exit {seen.exit_code}, {verdict}"
            + (f": `{seen.message}`" if seen.message else "")
        )
    return notes


def measure_cli(
    world: World,
    service_url: str,
    namespace: str,
    pods: Sequence[str],
    blocks: int,
    tools: Tools,
    manifest: Callable[[str], dict[str, Any]],
    clean_up: Callable[[], None],
    say: Say,
) -> tuple[CliDetail, dict[str, Figure]]:
    """Every row in one run on ``pods`` (and the pod with ports for the refusal), after
    looking at what ``kubectl kruise create`` does; returns the detail and the figures."""
    kubeconfig = world.plane.kubeconfig
    detail = CliDetail(versions=versions(tools))
    if tools.kubectl_note:
        detail.observations.append(tools.kubectl_note)
    odd = [odd_pod(world, namespace, kind) for kind in ODD_PODS]
    curl, crr = service_commands(service_url, namespace)
    kubectl_rows = kubectl_commands(tools, kubeconfig, namespace, manifest, PORTS_POD)
    if tools.plugin is not None:
        with_kubectl = kubectl_rows[0]
        detail.observations += observe_kruise(with_kubectl, tools, kubeconfig, namespace, pods[0])
        clean_up()
    for pod in odd:
        _, result = run_once(crr, pod)
        outcome = crr.problem(result) or "accepted (exit 0)"
        detail.observations.append(f"`crr restart` of pod {pod}: {outcome}")
    clean_up()
    commands = [curl, crr, *kubectl_rows]
    detail.measures = {c.label: c.measures for c in commands}
    before = os.getloadavg()[0]
    figures = measure(commands, pods, blocks, clean_up, say)
    detail.load = (before, os.getloadavg()[0])
    return detail, figures
