"""``crr rollout``: restart the pods of a workload (or of a selector) a few at a time, and
``rollout get|pause|resume|cancel``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crr_client import render, specs
from crr_client.commands import Context, created_prefix, exit_code, rollout_failed
from crr_client.errors import EXIT_OK, UsageError
from crr_client.transport import api_path
from crr_client.waiting import wait_until_finished


def _path(ref: specs.Ref, *rest: str) -> str:
    return api_path("v1", "namespaces", ref.namespace, "rollouts", ref.name, *rest)


def create(ctx: Context) -> int:
    args = ctx.args
    namespace = specs.namespace(args.namespace)
    if (args.workload is None) == (args.selector is None):
        raise UsageError("give the pods to restart as KIND/NAME or as --selector (one of them)")
    body: dict[str, Any] = {}
    if args.workload is not None:
        body["target"] = specs.target(args.workload).as_json()
    else:
        body["selector"] = specs.selector(args.selector)
    if args.containers:
        body["containers"] = args.containers
    if args.max_unavailable is not None:
        body["maxUnavailable"] = specs.max_unavailable(args.max_unavailable)
    if args.reason is not None:
        body["reason"] = args.reason
    response = ctx.create(namespace, "rollout", body)
    document, text = response.json(), response.text
    if args.dry_run:
        plan = render.rollout_line(document) + "\n" + render.rollout_table(document)
        ctx.emit(document, text, "dry run, nothing created: " + plan)
        return EXIT_OK
    line = created_prefix(response.status) + render.rollout_line(document, ctx.term.paint_out)
    if not args.wait:
        ctx.emit(document, text, line)
        return EXIT_OK
    ctx.term.progress(
        created_prefix(response.status) + render.rollout_line(document, ctx.term.paint_err)
    )
    return _wait(ctx, specs.Ref(namespace, document["name"]), document, text)


def get(ctx: Context) -> int:
    ref = specs.ref(ctx.args.target)
    response = ctx.transport.request("GET", _path(ref), deadline=ctx.deadline)
    document, text = response.json(), response.text
    if ctx.args.wait and not document.get("finished"):
        ctx.term.progress(render.rollout_line(document, ctx.term.paint_err))
        return _wait(ctx, ref, document, text, table=True)
    _show(ctx, document, text)
    return exit_code(rollout_failed(document))


def action(ctx: Context, verb: str) -> int:
    """pause, resume or cancel: sent once (a repeat could meet a 409 for its own success),
    retried only when the service surely did nothing."""
    ref = specs.ref(ctx.args.target)
    response = ctx.transport.request("POST", _path(ref, verb), repeatable=False)
    document = response.json()
    done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[verb]
    ctx.emit(
        document, response.text, f"{done} " + render.rollout_line(document, ctx.term.paint_out)
    )
    return EXIT_OK


def _show(ctx: Context, document: Mapping[str, Any], text: str) -> None:
    line = render.rollout_line(document, ctx.term.paint_out)
    if document.get("pods"):
        line += "\n" + render.rollout_table(document, ctx.term.paint_out)
    ctx.emit(document, text, line)


def _wait(
    ctx: Context, ref: specs.Ref, document: dict[str, Any], text: str, *, table: bool = False
) -> int:
    term = ctx.term
    states = _pod_states(document)
    phase = document.get("phase")
    term.bar(render.progress_bar(document))

    def on_change(latest: dict[str, Any], _text: str) -> None:
        nonlocal states, phase
        counts = "" if term.err_tty else f"  [{render.rollout_counts(latest)}]"
        for pod in latest.get("pods") or ():
            if states.get(pod.get("pod")) != (pod.get("state"), pod.get("message")):
                term.progress(render.pod_line(pod, term.paint_err) + counts)
        if latest.get("phase") != phase and not latest.get("finished"):
            term.progress(render.rollout_line(latest, term.paint_err))
            if latest.get("phase") == "Paused":
                term.progress(
                    f"paused: `crr rollout resume {ref}` goes on, `crr rollout cancel {ref}` stops"
                )
        states, phase = _pod_states(latest), latest.get("phase")
        term.bar(render.progress_bar(latest))

    try:
        final, final_text = wait_until_finished(
            ctx.transport,
            _path(ref),
            document,
            text,
            what=f"rollout {ref}",
            on_change=on_change,
            deadline=ctx.deadline,
            describe=lambda doc: (
                f"rollout {ref} is still {doc.get('phase')}, " + render.rollout_counts(doc)
            ),
        )
    finally:
        term.end_bar()
    if table:
        _show(ctx, final, final_text)
    else:
        ctx.emit(final, final_text, render.rollout_line(final, term.paint_out))
    return exit_code(rollout_failed(final))


def _pod_states(document: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        pod.get("pod"): (pod.get("state"), pod.get("message")) for pod in document.get("pods") or ()
    }
