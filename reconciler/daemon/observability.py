"""The daemon's observers, wired once: read model, metrics, status listener, notifier.

DESIGN.md "Observability": one read model (the local ledger tip + the
daemon's own state, :class:`~reconciler.readmodel.ReadModel`) and one stream
of typed events (the loop's :class:`~reconciler.daemon.observer.LoopObserver`
calls). The status page and ``/api/status`` render the read model, the
metrics read it at scrape time and count the events, the notifier follows
the ledger. :func:`observing` starts what the settings enable and stops it
all when the daemon ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from reconciler.daemon.jobs import Job
from reconciler.daemon.loop import Daemon
from reconciler.metrics import Metrics
from reconciler.notify import Notifier, targets_from
from reconciler.readmodel import LiveState, ReadModel
from reconciler.rollout.engine_types import Event
from reconciler.transport import ssh
from reconciler.web.server import StatusApp, StatusServer


class Observers:
    """The loop's observer: feeds the live state, the metrics and the notifier."""

    def __init__(self, live: LiveState, metrics: Metrics, notifier: Notifier | None) -> None:
        self.live = live
        self.metrics = metrics
        self.notifier = notifier

    def _wake(self) -> None:
        if self.notifier is not None:
            self.notifier.wake()

    def job_started(self, job: Job) -> None:
        self.live.job_started(job.kind, job.generation, job.config)

    def progress(self, job: Job, event: Event) -> None:
        self.live.event(event)
        self._wake()  # a progress event often follows a ledger record

    def job_finished(self, job: Job, seconds: float) -> None:
        self.live.job_finished(job.generation, job.report)
        self.metrics.cycle_seconds.labels(job.kind).observe(seconds)
        self._wake()

    def polled(self) -> None:
        self.live.polled()
        self.metrics.last_poll.set_to_current_time()

    def recorded(self) -> None:
        self._wake()

    def ledger_conflict(self) -> None:
        self.metrics.ledger_conflicts.inc()

    def connect_failed(self, host: str) -> None:
        self.metrics.ssh_failures.labels(host).inc()


@contextlib.contextmanager
def observing(daemon: Daemon) -> Iterator[Observers]:
    """Attach the observers to ``daemon``; start the listener and the notifier if enabled.

    Raises SettingsError when ``status_listen`` cannot be bound.
    """
    settings = daemon.settings
    live = LiveState()
    model = ReadModel(daemon.mirror.path, settings=settings, live=live, state=lambda: daemon.state)
    metrics = Metrics(model.current)
    targets = targets_from(settings)
    notifier = (
        Notifier(
            targets,
            ledger=lambda: model.ledger(live.snapshot().config),
            # Beside the clone, as the loop's state is: one position per config repo.
            positions=daemon.mirror.path.with_suffix(".notify"),
            settings=settings,
            log=daemon.log,
            attempts=settings.notify_attempts,
            counted=lambda kind, result: metrics.notifications.labels(kind, result).inc(),
        )
        if targets
        else None
    )
    observers = Observers(live, metrics, notifier)
    with contextlib.ExitStack() as stack:
        ssh.CONNECT_FAILURE_LISTENERS.append(observers.connect_failed)
        stack.callback(ssh.CONNECT_FAILURE_LISTENERS.remove, observers.connect_failed)
        if settings.status_listen:
            app = StatusApp(model.current, metrics=metrics.exposition, log=daemon.log)
            server = stack.enter_context(StatusServer(settings.status_listen, app))
            daemon.log.info(
                "status.listen",
                f"status page at {server.url} (also {server.url}api/status, {server.url}metrics)",
                url=server.url,
            )
        if notifier is not None:
            notifier.start()
            stack.callback(notifier.close)
        previous, daemon.observer = daemon.observer, observers
        stack.callback(setattr, daemon, "observer", previous)
        yield observers
