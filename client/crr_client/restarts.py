"""``crr restart``, ``get``, ``list``, ``follow`` and ``cancel``: one pod's restarts."""

from __future__ import annotations

import json
from typing import Any

from crr_client import render, specs
from crr_client.commands import Context, created_prefix, exit_code, restart_failed
from crr_client.errors import EXIT_OK
from crr_client.sse import follow as follow_events
from crr_client.transport import api_path
from crr_client.waiting import wait_until_finished


def _path(ref: specs.Ref, *rest: str) -> str:
    return api_path("v1", "namespaces", ref.namespace, "restarts", ref.name, *rest)


def restart(ctx: Context) -> int:
    args = ctx.args
    pod = specs.ref(args.target, "POD")
    body: dict[str, Any] = {"pod": pod.name}
    if args.containers:
        body["containers"] = args.containers
    if args.ordered:
        body["orderedRecreate"] = True
    if args.reason is not None:
        body["reason"] = args.reason
    if args.deadline is not None:
        body["activeDeadlineSeconds"] = args.deadline
    response = ctx.create(pod.namespace, "restart", body)
    document, text = response.json(), response.text
    if args.dry_run:
        ctx.emit(document, text, "dry run, nothing created: " + render.restart_line(document))
        return EXIT_OK
    line = created_prefix(response.status) + render.restart_line(document, ctx.term.paint_out)
    if not args.wait:
        ctx.emit(document, text, line)
        return EXIT_OK
    ctx.term.progress(
        created_prefix(response.status) + render.restart_line(document, ctx.term.paint_err)
    )
    return _wait(ctx, specs.Ref(pod.namespace, document["name"]), document, text)


def get(ctx: Context) -> int:
    ref = specs.ref(ctx.args.target)
    response = ctx.transport.request("GET", _path(ref), deadline=ctx.deadline)
    document, text = response.json(), response.text
    if ctx.args.wait and not document.get("finished"):
        ctx.term.progress(render.restart_line(document, ctx.term.paint_err))
        return _wait(ctx, ref, document, text)
    ctx.emit(document, text, render.restart_line(document, ctx.term.paint_out))
    return exit_code(restart_failed(document))


def _wait(ctx: Context, ref: specs.Ref, document: dict[str, Any], text: str) -> int:
    shown = render.restart_line(document)

    def on_change(latest: dict[str, Any], _text: str) -> None:
        nonlocal shown
        line = render.restart_line(latest)
        if line != shown and not latest.get("finished"):
            ctx.term.progress(render.restart_line(latest, ctx.term.paint_err))
        shown = line

    final, final_text = wait_until_finished(
        ctx.transport,
        _path(ref),
        document,
        text,
        what=f"restart {ref}",
        on_change=on_change,
        deadline=ctx.deadline,
        describe=lambda doc: f"restart {ref} is still {render.restart_word(doc)}",
    )
    ctx.emit(final, final_text, render.restart_line(final, ctx.term.paint_out))
    return exit_code(restart_failed(final))


def listing(ctx: Context) -> int:
    args = ctx.args
    namespace = specs.namespace(args.namespace)
    query: dict[str, str | int | bool] = {"limit": 500}
    if args.pod:
        query["pod"] = args.pod
    if args.finished or args.active:
        query["finished"] = "true" if args.finished else "false"
    path = api_path("v1", "namespaces", namespace, "restarts")
    items: list[dict[str, Any]] = []
    pages: list[str] = []
    while True:
        response = ctx.transport.request("GET", path, query=query)
        page = response.json()
        items.extend(page.get("items") or ())
        pages.append(response.text)
        if not page.get("continue"):
            break
        query["continue"] = page["continue"]
    if ctx.output == "json":
        merged = {"items": items, "continue": None}
        ctx.term.result(pages[0] if len(pages) == 1 else json.dumps(merged))
    elif ctx.output == "name":
        for item in items:
            ctx.term.result(f"{item.get('namespace')}/{item.get('name')}")
    elif items:
        ctx.term.result(render.restart_table(items, ctx.term.paint_out))
    else:
        ctx.term.error(f"no restarts in namespace {namespace}")
    return EXIT_OK


def follow(ctx: Context) -> int:
    ref = specs.ref(ctx.args.target)
    shown = ""

    def on_snapshot(document: dict[str, Any], text: str) -> None:
        nonlocal shown
        if ctx.output == "json":
            ctx.term.result(text)
            return
        line = render.restart_line(document)
        if line != shown and ctx.output == "text":
            ctx.term.result(render.restart_line(document, ctx.term.paint_out))
        shown = line

    final = follow_events(
        ctx.transport,
        _path(ref, "events"),
        "restart",
        on_snapshot=on_snapshot,
        deadline=ctx.deadline,
    )
    if ctx.output == "name":
        ctx.term.result(str(ref))
    return exit_code(restart_failed(final))


def cancel(ctx: Context) -> int:
    ref = specs.ref(ctx.args.target)
    response = ctx.transport.request("DELETE", _path(ref), repeatable=False)
    document = response.json()
    ctx.emit(
        document, response.text, "cancelled " + render.restart_line(document, ctx.term.paint_out)
    )
    return EXIT_OK
