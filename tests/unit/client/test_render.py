"""Terminal output: colours and a redrawn bar on a terminal only."""

from __future__ import annotations

import io
import re

from crr_client import render

from tests.support.fake_gateway import restart_doc, rollout_doc


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_state_words_are_coloured_and_the_bar_is_redrawn_in_place() -> None:
    out, err = FakeTty(), FakeTty()
    term = render.Terminal(out, err, environ={})
    doc = rollout_doc(pods=[("shop-a", "Succeeded"), ("shop-b", "Restarting")], unavailable=1)
    term.bar(render.progress_bar(doc))
    term.progress("pod shop-a " + term.paint_err("Succeeded"))
    term.end_bar()
    term.result(render.rollout_line(doc, term.paint_out))
    bar = "[############............] 1/2 pods done, 1/1 unavailable  Progressing"
    # the bar; wiped for a progress line and drawn again under it; wiped at the end
    before, drawn, line_then_bar, after = err.getvalue().split("\r\x1b[K")
    assert (before, drawn, after) == ("", bar, "")
    line = r" +0\.\ds  pod shop-a \x1b\[32mSucceeded\x1b\[0m\n"
    assert re.fullmatch(line + re.escape(bar), line_then_bar)
    assert "\x1b[36mProgressing\x1b[0m" in out.getvalue()


def test_no_color_turns_colours_off_even_on_a_terminal() -> None:
    term = render.Terminal(FakeTty(), FakeTty(), environ={"NO_COLOR": "1"})
    assert term.paint_out("Failed") == "Failed"
    assert term.paint_err("Failed") == "Failed"


def test_off_a_terminal_there_is_no_bar_and_no_escape_code() -> None:
    out, err = io.StringIO(), io.StringIO()
    term = render.Terminal(out, err, environ={})
    term.bar("[###] 1/2")
    term.progress("pod shop-a " + term.paint_err("Succeeded"))
    term.end_bar()
    assert "\x1b" not in err.getvalue() and "\r" not in err.getvalue()
    assert err.getvalue().endswith("pod shop-a Succeeded\n")


def test_quiet_silences_progress_but_not_results() -> None:
    out, err = io.StringIO(), FakeTty()
    term = render.Terminal(out, err, quiet=True, environ={})
    term.bar("[###]")
    term.progress("pod shop-a Succeeded")
    term.result("done")
    assert err.getvalue() == ""
    assert out.getvalue() == "done\n"


def test_the_progress_bar_counts_pods_done_and_the_budget_spent() -> None:
    doc = rollout_doc(
        pods=[("a", "Succeeded"), ("b", "Failed"), ("c", "Skipped"), ("d", "Restarting")],
        unavailable=2,
        budget=3,
    )
    assert render.progress_bar(doc, width=8) == (
        "[######..] 3/4 pods done, 2/3 unavailable  Progressing"
    )
    assert render.progress_bar(rollout_doc(pods=[]), width=4).startswith("[####] 0/0 pods done")


def test_a_selector_rollout_names_its_selector() -> None:
    doc = rollout_doc()
    doc["target"] = None
    doc["selector"] = {
        "matchLabels": {"app": "shop"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}],
    }
    assert render.rollout_what(doc) == "pods app=shop,env In (a,b)"


def test_a_restart_line_without_container_states_lists_the_containers() -> None:
    assert render.restart_line(restart_doc()) == (
        "restart demo/web-0-x7k2p Pending: pod web-0, nginx, sidecar"
    )
