"""What the loop tells its observers (status page, metrics, notifications).

The loop calls these from its own thread and from the worker thread; each
call returns at once and never raises. :class:`NoObserver` is the default;
``reconciler.daemon.observability`` is the real one.
"""

from __future__ import annotations

from typing import Protocol

from reconciler.daemon.jobs import Job
from reconciler.rollout.engine_types import Event


class LoopObserver(Protocol):
    """What the loop tells its observers; each call returns at once and never raises."""

    def job_started(self, job: Job) -> None: ...
    def progress(self, job: Job, event: Event) -> None: ...
    def job_finished(self, job: Job, seconds: float) -> None: ...
    def polled(self) -> None: ...
    def recorded(self) -> None: ...
    def ledger_conflict(self) -> None: ...


class NoObserver:
    """The default: nobody watches."""

    def job_started(self, job: Job) -> None:
        pass

    def progress(self, job: Job, event: Event) -> None:
        pass

    def job_finished(self, job: Job, seconds: float) -> None:
        pass

    def polled(self) -> None:
        pass

    def recorded(self) -> None:
        pass

    def ledger_conflict(self) -> None:
        pass
