"""The loop's part for a replica (``replica_id`` set): one job per held build set.

A mixin of :class:`reconciler.daemon.loop.Daemon`, kept apart so the loop
reads the same with one reconciler as before. What it adds:

- which jobs to start: one per set this replica holds a lease on and that is
  due (:class:`~reconciler.daemon.replicas.SetShare`), never two on one set;
- before a set's job: the ledger is fetched from the config repo (other
  replicas wrote since), and a failure of this generation recorded there is
  respected, as a restarted daemon respects its saved ``failed`` state;
- after it: that set's verdict, then the daemon's one status over its sets;
- the engine's ``may_continue``: only the job's own set, only while its lease holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from reconciler.config.model import Config
from reconciler.daemon.jobs import Job, Recorder
from reconciler.daemon.logs import EventLog
from reconciler.daemon.mirror import Mirror
from reconciler.daemon.records import short as _short
from reconciler.daemon.replicas import LeaseKeeper, SetShare, failed_in_ledger
from reconciler.daemon.state import DaemonState, Status, judge
from reconciler.errors import UserError
from reconciler.ledger import Entry, Ledger, Record
from reconciler.rollout.engine_types import HostResult, Report, settled
from reconciler.statusstore import StatusStore
from reconciler.vocabulary import HostOutcome, LedgerOutcome


class ReplicaLoop:
    """What a replica's loop does differently; the Daemon provides the rest."""

    keeper: LeaseKeeper | None
    log: EventLog
    mirror: Mirror
    state: DaemonState
    _share: SetShare
    _shutdown: threading.Event
    _pending: tuple[str, Config] | None

    def _accept_pending(self) -> Config:
        raise NotImplementedError

    def _current_config(self) -> Config | None:
        raise NotImplementedError

    def _save(self, state: DaemonState) -> None:
        raise NotImplementedError

    def _next_replica_jobs(
        self, poll_due: bool, busy: Mapping[tuple[str, ...] | None, Job]
    ) -> list[Job]:
        assert self.keeper is not None
        if self._shutdown.is_set() or (self._pending is not None and busy):
            return []  # a newer commit waits until the running steps are done
        if self._pending is not None:
            self._accept_pending()
        config = self._current_config() if self.state.generation else None
        if config is None:
            return []
        names = {bs.name for bs in config.buildsets}
        self.keeper.want(sorted(names))
        held = self.keeper.holding().sets & names
        self._share.forget(held)
        running = {name for key in busy if key for name in key}
        due = [(k, n) for k, n in self._share.due(held, poll_due) if n not in running]
        return [Job(kind, config.commit or "", config, (name,)) for kind, name in due]

    def _taken_over_failed(self, job: Job, ledger: Recorder) -> bool:
        """A replica's set: start from the remote ledger; respect a failure recorded there.

        True when the set's rollout of this generation already failed (under
        another replica, or this one before a restart): not retried until a new commit.
        """
        if not isinstance(ledger, Ledger):
            return False
        ledger.sync()  # other replicas wrote since: read their progress, not our last copy
        (name,) = job.buildsets or ("",)
        if self._share.status.get(name) is not None:
            return False  # this replica's own verdict of this generation stands
        why = failed_in_ledger(StatusStore(ledger).progress(name), job.generation)
        if why is None:
            return False
        host = HostResult("-", name, "-", HostOutcome.FAILURE, why)
        job.report = Report(False, False, (host,), (f"{name}: failed earlier: {why}",))
        return True

    def _finish_set(self, job: Job, name: str) -> None:
        """A replica's job on one held set: that set's verdict, then the daemon's over all."""
        reason = ""
        verdict: Status | None
        if job.error is not None:
            user = isinstance(job.error, UserError)
            self.log.error(
                "rollout.error" if user else "rollout.crash",
                f"{name}: {job.error}" if user else repr(job.error),
                exc=not user,
                generation=job.generation,
                buildset=name,
            )
            verdict, reason = ("incomplete" if user else "failed"), str(job.error)
        else:
            report = job.report
            assert report is not None
            for line in report.summary:
                self.log.info("rollout.summary", line, generation=job.generation, buildset=name)
            mine = [r for r in report.results if r.buildset == name] or list(report.results)
            waiting = any(r.outcome == HostOutcome.WAITING for r in mine)
            converged = bool(mine) and all(settled(r.outcome) for r in mine)
            seen = judge(converged, report.interrupted and waiting, (r.outcome for r in mine))
            verdict = None if seen == "interrupted" else seen
            shown = [r for r in mine if r.outcome not in (HostOutcome.SUCCESS, HostOutcome.SKIPPED)]
            reason = "; ".join(f"{r.host}: {r.outcome}: {r.message}" for r in shown)
            if verdict == "converged" and job.kind == "apply":
                self.log.info(
                    "generation.converged",
                    f"{name}: every host is on {_short(job.generation)}",
                    generation=job.generation,
                    buildset=name,
                )
            elif verdict == "failed":
                self.log.error(
                    "generation.failed",
                    f"{name}: generation {_short(job.generation)} failed ({reason}); "
                    "not retried until a new commit",
                    generation=job.generation,
                    buildset=name,
                )
        self._share.finished(name, verdict, reason)
        assert self.keeper is not None
        status, why = self._share.overall(self.keeper.holding().sets)
        if status != self.state.status or why != self.state.reason:
            self._save(self.state.with_status(status, why))
        if verdict == "converged":
            self.mirror.housekeeping()


def only_its_set(job: Job, keeper: LeaseKeeper, name: str) -> bool:
    """A replica's per-set job steps only its own set, and only while the lease holds.

    (The src host's shared steps ask for the src host's set: another job's, or
    another replica's, so they are done once.)
    """
    return name in (job.buildsets or ()) and keeper.holds(name)


#: Records the daemon writes once per config commit, whichever replica sees it first.
_ONCE = (LedgerOutcome.VALIDATED, LedgerOutcome.REJECTED)


def once_per_commit(record: Record) -> Callable[[Entry], bool] | None:
    """For a validated/rejected record: what says another replica has written it already.

    The ledger asks it before writing and again whenever its push loses the
    race, so replicas that see a new commit at once leave one record of it.
    """
    if record.outcome not in _ONCE:
        return None
    return lambda e: (
        e.generation == record.generation and e.outcome == record.outcome and e.buildset is None
    )
