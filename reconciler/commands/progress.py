"""A rollout's progress for a person: one line per host per step, detail on request.

Events are typed (reconciler.rollout.engine_types.Event): ``STEP`` starts a
plan step on a host, ``BUILD``/``INSTALL`` carry the remote ``>>>`` lines,
``HOST`` what a step did, ``STAGE``/``INFO``/``WARNING`` the rest. Nothing
here parses the reconciler's own messages; only make(1)'s ``stage N.N``
lines are counted, as FreeBSD prints them.

- ``quiet``: warnings only (the summary follows from ``apply``);
- default, not a terminal: stages, one line per step as it starts, warnings;
- default, a terminal: the same, but the step a host is in is a live line
  (rewritten in place, with the remote output folded into ``stage N/M`` and
  the time since the step started), kept as one line when the step ends;
- ``verbose``: every event, the remote ``>>>`` lines and each step's own
  messages included, as plain lines.

Colour only on a terminal and only without ``NO_COLOR`` (https://no-color.org);
cursor movement only on a terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from reconciler.config.model import Config
from reconciler.rollout.engine_types import Event
from reconciler.vocabulary import EventKind

#: make(1)'s progress headings: Makefile.inc1 prints ">>> stage 1.1: ..." through
#: ">>> stage 4.3: building everything" for buildworld (WMAKE_TGTS: _legacy,
#: _bootstrap-tools, _cleanobj, _obj, _build-tools, _cross-tools, _build-metadata,
#: _includes, _libraries, everything) and stages 1, 2.1, 2.2, 2.3 and 3.1 per
#: kernel for buildkernel. A lib32 build adds one; the count then just goes past M.
WORLD_STAGES = 10
KERNEL_STAGES = 5
_STAGE_LINE = re.compile(r"^stage \d+(\.\d+)?: ")

_MARKERS = {
    EventKind.STAGE: "==",
    EventKind.WARNING: "!!",
    EventKind.BUILD: ">>",
    EventKind.INSTALL: ">>",
}
_BOLD, _YELLOW, _RESET = "\x1b[1m", "\x1b[33m", "\x1b[0m"


def colour_wanted(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (to anything) or TERM is dumb."""
    return (
        _isatty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM", "") != "dumb"
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def elapsed(seconds: float) -> str:
    """``0:42``, ``12:03``, ``1:02:03``."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class _Live:
    """The step a host is in, as its live line shows it."""

    where: str
    step: str
    reason: str
    started: float
    stages: int = 0
    total: int | None = None
    last: str = ""
    lines: int = field(default=0)
    stamp: str = field(default_factory=lambda: time.strftime("%H:%M:%S"))  # when it started


class ProgressPrinter:
    """Progress events as lines: ``converge(progress=printer)``, then ``printer.close()``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        verbose: int = 0,
        quiet: int = 0,
        tty: bool | None = None,
        colour: bool | None = None,
        config: Config | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh: float = 1.0,
    ) -> None:
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.quiet = quiet
        self.tty = _isatty(self.stream) if tty is None else tty
        self.colour = colour_wanted(self.stream) if colour is None else colour
        self.config = config
        self.clock = clock
        # Live lines only at the default level on a terminal; -v shows every line as it comes.
        self.live_mode = self.tty and not verbose and not quiet
        self._live: dict[str, _Live] = {}
        self._headers: dict[str | None, str] = {}  # build set -> its stage line, not shown yet
        self._drawn = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live_mode and refresh > 0:
            self._ticker = threading.Thread(
                target=self._tick, args=(refresh,), name="progress", daemon=True
            )
            self._ticker.start()

    # --- events ------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self.quiet:
                if event.kind == EventKind.WARNING:
                    self._permanent(self._line(event))
                return
            if self.verbose:
                self._permanent(self._line(event))
                return
            match event.kind:
                case EventKind.STAGE:
                    # Shown once a step of that stage starts: a stage with nothing to do is quiet.
                    self._headers[event.buildset] = self._line(event)
                case EventKind.STEP:
                    self._headers_for(event.buildset)
                    self._step(event)
                case EventKind.BUILD | EventKind.INSTALL | EventKind.HOST | EventKind.CONFIG:
                    self._detail(event)
                case EventKind.WARNING | EventKind.INFO:
                    self._headers_for(event.buildset)
                    self._permanent(self._line(event))

    def close(self) -> None:
        """End every live line as a permanent one; stop refreshing."""
        self._stop.set()
        with self._lock:
            for key in list(self._live):
                self._finish(key)
            self._flush([])
        if self._ticker is not None:
            self._ticker.join(timeout=2)

    # --- lines -------------------------------------------------------------------

    def _headers_for(self, buildset: str | None) -> None:
        for key in (None, buildset):
            header = self._headers.pop(key, None)
            if header is not None:
                self._permanent(header)

    def _where(self, event: Event) -> str:
        return "/".join(part for part in (event.buildset, event.host) if part)

    def _line(self, event: Event) -> str:
        where = self._where(event)
        marker = _MARKERS.get(event.kind, "  ")
        text = (
            f"{time.strftime('%H:%M:%S')} {marker} {where + ': ' if where else ''}{event.message}"
        )
        if self.colour and event.kind == EventKind.WARNING:
            return f"{_YELLOW}{text}{_RESET}"
        if self.colour and event.kind == EventKind.STAGE:
            return f"{_BOLD}{text}{_RESET}"
        return text

    def _step(self, event: Event) -> None:
        key = self._where(event)
        if not self.live_mode:
            self._permanent(self._line(event))
            return
        if key in self._live:
            self._finish(key)
        step = event.step or ""
        reason = event.message.removeprefix(f"{step}: ") if step else event.message
        self._live[key] = _Live(key, step, reason, self.clock(), total=self._stages_of(event))
        self._flush([])

    def _detail(self, event: Event) -> None:
        """A step's own output: folded into its live line, or not shown (default, no terminal)."""
        if not self.live_mode:
            return
        live = self._live.get(self._where(event))
        if live is None:
            return
        live.lines += 1
        if event.kind == EventKind.BUILD and _STAGE_LINE.match(event.message):
            live.stages += 1
        live.last = event.message
        self._flush([])

    def _stages_of(self, event: Event) -> int | None:
        if event.step not in ("build", "await-build") or self.config is None:
            return None
        try:
            bs = self.config.buildset(event.buildset or "")
        except KeyError:
            return None
        return WORLD_STAGES + KERNEL_STAGES * len(bs.kernconfs)

    def _render(self, live: _Live, *, final: bool) -> str:
        spent = elapsed(self.clock() - live.started)
        parts = [f"{live.step}: {live.reason}" if live.step else live.reason]
        if live.stages:
            total = f"/{live.total}" if live.total and live.stages <= live.total else ""
            parts.append(f"stage {live.stages}{total}")
        if live.last and not (final and live.stages):
            parts.append(live.last)
        return f"{live.stamp}    {live.where}: {'; '.join(parts)} [{spent}]"

    def _finish(self, key: str) -> None:
        live = self._live.pop(key)
        self._flush([self._render(live, final=True)])

    def _permanent(self, line: str) -> None:
        if self.live_mode:
            self._flush([line])
        else:
            print(line, file=self.stream, flush=True)

    def _flush(self, lines: list[str]) -> None:
        """Print ``lines`` above the live region, then draw the live region again."""
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}A\r\x1b[J")  # up to the region's top, clear below
        out += [line + "\n" for line in lines]
        region = [self._render(live, final=False)[:width] for live in self._live.values()]
        out += [line + "\n" for line in region]
        self._drawn = len(region)
        self.stream.write("".join(out))
        self.stream.flush()

    def _tick(self, every: float) -> None:
        # The elapsed time moves while a host soaks or reboots without saying anything.
        while not self._stop.wait(every):
            with self._lock:
                if self._live:
                    self._flush([])
