"""One converge run of the daemon, in its worker thread, and the collaborators it calls.

:class:`Hooks` names what the loop calls (``converge``, ``load_config``, the
ledger, the clock), so tests can put a scripted rollout and a fake clock in.
A :class:`Job` is one converge of one generation: ``apply`` (a new or
unfinished generation) or ``drift`` (a converged one, re-checked at a poll).
Each build set's ``rollout.drift`` policy is the planner's to apply: one
converge call covers every build set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from reconciler.clock import Clock, SystemClock
from reconciler.config.model import Config
from reconciler.ledger import Ledger, Record
from reconciler.rollout.engine_types import Event, Report
from reconciler.settings import Settings

JobKind = Literal["apply", "drift"]


class Converge(Protocol):
    def __call__(
        self,
        config: Config,
        *,
        settings: Settings,
        ledger: Any,
        buildsets: Sequence[str] | None = ...,
        progress: Callable[[Event], None] = ...,
        stop: threading.Event | None = ...,
    ) -> Report: ...


class Recorder(Protocol):
    def record(self, record: Record) -> str: ...


def _engine_converge(config: Config, **kwargs: Any) -> Report:
    # Imported late: the engine pulls in SSH and the facts readers, which the
    # loop's own tests (with a fake converge) do not need.
    from reconciler.rollout.engine import converge

    return converge(config, **kwargs)


def _load(repo: Path, rev: str) -> Config:
    from reconciler.config.load import load_config

    return load_config(repo, rev)


def _ledger(repo: Path, branch: str) -> Recorder:
    return Ledger(repo, branch, remote="origin")


@dataclass
class Hooks:
    """What the loop calls; tests replace some of them."""

    converge: Converge = _engine_converge
    load_config: Callable[[Path, str], Config] = _load
    ledger: Callable[[Path, str], Recorder] = _ledger
    clock: Clock = field(default_factory=SystemClock)


@dataclass
class Job:
    """One converge run in the worker thread."""

    kind: JobKind
    generation: str
    config: Config
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    report: Report | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()


def run_job(
    job: Job,
    converge: Converge,
    *,
    settings: Settings,
    ledger: Recorder,
    progress: Callable[[Event], None],
) -> None:
    """Converge ``job``'s build sets; the outcome lands on the job, never raised."""
    try:
        job.report = converge(
            job.config,
            settings=settings,
            ledger=ledger,
            progress=progress,
            stop=job.stop,
        )
    except BaseException as exc:  # the loop decides what an error means; a worker never dies
        job.error = exc
