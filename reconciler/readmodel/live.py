"""What the daemon itself knows and the ledger does not: the job running now, the last
report per host, the last progress event per build set, the last successful poll.

The daemon's loop feeds :class:`LiveState` from its typed events
(``reconciler.rollout.engine_types.Event``) and finished jobs; readers take a
frozen :class:`Live` with :meth:`LiveState.snapshot`. Nothing parses a
message: a message is kept only to be shown as it was said.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType

from reconciler.config.model import Config
from reconciler.rollout.engine_types import Event, Report
from reconciler.vocabulary import EventKind


@dataclass(frozen=True)
class LiveHost:
    """A host's result in the daemon's last finished job."""

    outcome: str  # a HostOutcome value
    message: str
    generation: str
    at: datetime


@dataclass(frozen=True)
class LiveSet:
    host: str | None = None
    step: str | None = None
    message: str | None = None
    build_line: str | None = None
    build_at: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class Live:
    started: datetime
    config: Config | None = None  # the generation the daemon works on or accepted last
    job: str | None = None
    job_generation: str | None = None
    job_since: datetime | None = None
    job_sets: tuple[str, ...] = ()
    last_poll: datetime | None = None
    sets: Mapping[str, LiveSet] = field(default_factory=dict)
    hosts: Mapping[str, LiveHost] = field(default_factory=dict)


_STEP_KINDS = frozenset({EventKind.STEP, EventKind.HOST, EventKind.INSTALL, EventKind.CONFIG})


def _kind(event: Event) -> EventKind | None:
    try:
        return EventKind(event.kind)
    except ValueError:
        return None


class LiveState:
    """Thread-safe: the loop and the worker thread write, HTTP threads read."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._live = Live(started=now())
        self._sets: dict[str, LiveSet] = {}
        self._hosts: dict[str, LiveHost] = {}

    def snapshot(self) -> Live:
        with self._lock:
            return replace(
                self._live,
                sets=MappingProxyType(dict(self._sets)),
                hosts=MappingProxyType(dict(self._hosts)),
            )

    def job_started(self, kind: str, generation: str, config: Config) -> None:
        with self._lock:
            self._live = replace(
                self._live,
                config=config,
                job=kind,
                job_generation=generation,
                job_since=self._now(),
                job_sets=tuple(bs.name for bs in config.buildsets),
            )

    def job_finished(self, generation: str, report: Report | None) -> None:
        now = self._now()
        with self._lock:
            self._live = replace(
                self._live, job=None, job_generation=None, job_since=None, job_sets=()
            )
            if report is None:
                return
            for result in report.results:
                self._hosts[result.host] = LiveHost(
                    str(result.outcome), result.message, generation, now
                )

    def polled(self) -> None:
        with self._lock:
            self._live = replace(self._live, last_poll=self._now())

    def event(self, event: Event) -> None:
        """One progress event of the running job."""
        kind = _kind(event)
        if event.buildset is None or kind is None:
            return
        now = self._now()
        with self._lock:
            current = self._sets.get(event.buildset, LiveSet())
            if kind is EventKind.BUILD:
                current = replace(current, build_line=event.message, build_at=now, updated=now)
            elif kind in _STEP_KINDS:
                step = getattr(event, "step", None)  # the step kind, once events carry it
                current = replace(
                    current,
                    host=event.host,
                    step=str(step) if step is not None else None,
                    message=event.message,
                    updated=now,
                )
            else:
                return
            self._sets[event.buildset] = current
