"""The progress printer's levels and its terminal rendering (pure: events in, text out)."""

from __future__ import annotations

import io
import re

import pytest

from reconciler.commands.progress import ProgressPrinter, colour_wanted, elapsed
from reconciler.config.load import load_config
from reconciler.rollout.engine_types import Event
from reconciler.vocabulary import EventKind as K
from tests.commands.terminal import ROOT

EVENTS = [
    Event(K.STAGE, "source", "lab"),  # nothing to do in it: not shown by default
    Event(K.STAGE, "build", "lab"),
    Event(K.STEP, "build: build 3e948da47b67 not in /usr/obj", "lab", "builder", "build"),
    Event(K.BUILD, "World build started on Tue Dec  1 08:08:32 UTC 2026", "lab", "builder"),
    Event(K.BUILD, "stage 1.1: legacy release compatibility shims", "lab", "builder"),
    Event(K.BUILD, "stage 1.2: bootstrap tools", "lab", "builder"),
    Event(K.HOST, "build 3e948da47b67 finished", "lab", "builder"),
    Event(K.WARNING, "web2 unreachable: connection refused", "lab"),
]
TIME = r"\d\d:\d\d:\d\d"


def printed(**options: object) -> str:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, refresh=0, **options)  # type: ignore[arg-type]
    for event in EVENTS:
        printer(event)
    printer.close()
    return stream.getvalue()


def test_default_on_a_pipe_is_one_line_per_step_and_the_warnings() -> None:
    lines = printed(tty=False, colour=False).splitlines()
    assert [re.sub(TIME, "T", line) for line in lines] == [
        "T == lab: build",
        "T    lab/builder: build: build 3e948da47b67 not in /usr/obj",
        "T !! lab: web2 unreachable: connection refused",
    ]


def test_verbose_shows_every_line_and_quiet_only_warnings() -> None:
    loud = printed(tty=True, colour=False, verbose=1)
    assert ">> lab/builder: stage 1.2: bootstrap tools" in loud and "== lab: source" in loud
    assert "lab/builder: build 3e948da47b67 finished" in loud and "\x1b[" not in loud
    assert (
        printed(tty=False, colour=False, quiet=1)
        .splitlines()[0]
        .endswith("!! lab: web2 unreachable: connection refused")
    )
    assert len(printed(tty=False, colour=False, quiet=1).splitlines()) == 1


def test_a_terminal_gets_one_live_line_per_host_with_make_stages_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # live lines are cut to the terminal's width
    config = load_config(ROOT / "example-repo")
    out = printed(tty=True, colour=True, config=config)
    # lab builds world and BUILDER GENERIC WEB: 10 world stages + 5 per kernel.
    assert (
        "build: build 3e948da47b67 not in /usr/obj; stage 2/25; stage 1.2: bootstrap tools" in out
    )
    assert "\x1b[1A\r\x1b[J" in out  # the live line rewritten in place
    assert "\x1b[1m" in out and "\x1b[33m" in out  # stage bold, warning yellow
    final = out.rsplit("\x1b[J", 1)[1]
    assert re.fullmatch(
        rf"{TIME}    lab/builder: build: build 3e948da47b67 not in /usr/obj; stage 2/25 \[0:00\]\n",
        final,
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(Terminal()) and not colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Terminal())
    stream = Terminal()
    printer = ProgressPrinter(stream, refresh=0)  # decides for itself: a terminal, NO_COLOR
    printer(EVENTS[-1])
    printer.close()
    assert "\x1b[33m" not in stream.getvalue() and "web2 unreachable" in stream.getvalue()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not colour_wanted(Terminal())
    assert elapsed(42) == "0:42" and elapsed(3723) == "1:02:03"
