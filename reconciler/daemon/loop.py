"""The reconcile loop: watch the config repo, apply each new commit, keep converged hosts converged.

One iteration (woken by the poll timer, a filesystem watch, SIGHUP, or a
finished rollout):

1. fetch the tracked branch into the daemon's clone;
2. a tip never seen before is checked (signature policy, then
   ``load_config``: reconciler.daemon.intake); a refused one is recorded in
   the ledger (outcome ``rejected``) once, and nothing changes on hosts;
3. an accepted tip is recorded as ``validated`` and rolled out by
   ``converge`` in a worker thread, while this thread keeps fetching: a newer
   accepted commit sets the rollout's ``stop`` event, the running step
   finishes, and the newer generation starts over;
4. a converged generation is re-checked at every poll (drift: heal or report,
   per build set ``rollout.drift``); a failed one is left alone until a new
   commit arrives (Argo CD's lesson, DESIGN.md).

The daemon keeps one SSH connection per host for its life
(:attr:`Daemon.pool`, reconciler.transport.pool): a poll of hosts in sync
costs one channel and one batched probe per host, not a handshake.

With ``replica_id`` set, several daemons share the build sets through leases
on the config repo (reconciler.daemon.replicas): each runs one job per set it
holds, the lease check is the engine's ``may_continue``, and a set taken over
from another replica resumes from the ledger as a restarted daemon does.

Collaborators (``converge``, ``load_config``, the ledger, the clock) are
injected through :class:`Hooks`, so the loop is tested with a fake rollout
and a fake clock against real git repositories.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from reconciler.config.model import Config, ReconcilerPolicy
from reconciler.daemon import records
from reconciler.daemon.intake import CommitIntake
from reconciler.daemon.jobs import Hooks, Job, JobKind, Recorder, run_job
from reconciler.daemon.logs import EventLog
from reconciler.daemon.mirror import Mirror
from reconciler.daemon.observer import LoopObserver, NoObserver
from reconciler.daemon.records import short as _short
from reconciler.daemon.replicaloop import ReplicaLoop, once_per_commit, only_its_set
from reconciler.daemon.replicas import LeaseKeeper, SetShare
from reconciler.daemon.state import DaemonState, judge, load_state, save_state
from reconciler.daemon.trust import verify_commit
from reconciler.errors import UserError
from reconciler.ledger import Ledger, Record
from reconciler.rollout.engine_types import Event, HostResult
from reconciler.settings import Settings
from reconciler.transport.pool import ConnectionPool
from reconciler.transport.target import Target
from reconciler.vocabulary import FAILED_HOST_OUTCOMES, EventKind, HostOutcome

#: How long SIGTERM waits for the running step to reach its safe point.
STOP_GRACE = 1800.0


def idle_limit(settings: Settings) -> float:
    """How long the daemon keeps a host's unused connection: ten minutes, or three polls."""
    return max(600.0, 3 * float(settings.poll_interval))


def _no_config(name: str) -> tuple[Target, tuple[()]]:
    raise UserError(f"{name}: no config loaded yet")  # converge points the pool at one first


class Daemon(CommitIntake, ReplicaLoop):
    """The loop of ``reconciler run``. Construct, then :meth:`run` (blocks)."""

    def __init__(
        self,
        settings: Settings,
        mirror: Mirror,
        *,
        allowed_signers: Path | None = None,
        hooks: Hooks | None = None,
        log: EventLog | None = None,
        state_path: Path | None = None,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        if settings.poll_interval <= 0:
            raise UserError(f"poll_interval must be positive, not {settings.poll_interval}")
        self.settings = settings
        self.mirror = mirror
        self.allowed_signers = allowed_signers
        self.hooks = hooks or Hooks()
        self.log = log or EventLog()
        # Next to the clone: one state per config repo, even when work dirs are shared.
        self.state_path = state_path or mirror.path.with_suffix(".state.json")
        self.stop_grace = stop_grace
        self.state = load_state(self.state_path)
        self.wake = threading.Event()
        self._shutdown = threading.Event()
        self._poll_requested = False
        self._config: Config | None = None
        self._pending: tuple[str, Config] | None = None
        self._recheck_rejected = True  # once per start: the signers file may have changed
        self._ledgers: dict[str, Recorder] = {}
        #: (generation, what waited) of the last "incomplete" warning.
        self._last_incomplete: tuple[str, str] | None = None
        self._unknown_branch_logged = False
        self._last_tip: str | None = None
        #: Status page, metrics, notifications (reconciler.daemon.observability); no-op by default.
        self.observer: LoopObserver = NoObserver()
        #: one connection per host for the daemon's life (closed by open_daemon on exit)
        self.pool = ConnectionPool(
            _no_config,
            key_path=settings.ssh_key,
            connect_timeout=settings.connect_timeout,
            command_timeout=settings.command_timeout,
            max_idle=idle_limit(settings),
        )
        #: the leases of a replica (settings.replica_id; set by open_daemon), else None
        self.keeper: LeaseKeeper | None = None
        self._share = SetShare()

    # --- signals and watch (any thread) ------------------------------------------

    def request_shutdown(self) -> None:
        """SIGTERM: no new steps; the running one reaches its safe point; :meth:`run` returns."""
        self._shutdown.set()
        self.wake.set()

    def request_poll(self) -> None:
        """SIGHUP: fetch and check drift now, as if the poll interval had passed."""
        self._poll_requested = True
        self.wake.set()

    def notify_change(self, _path: str = "") -> None:
        """The config repo's refs may have moved (filesystem watch): fetch now."""
        self.wake.set()

    # --- the loop -------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        """Loop until SIGTERM (exit status 0), or, with ``once``, do one pass and return.

        ``once``: apply the tip (or check drift) to the end; 0 when converged, 1 otherwise.
        """
        clock = self.hooks.clock
        interval = float(self.settings.poll_interval)
        next_poll = clock.now()
        # Keyed by the sets a job covers: one job (None) alone, one per held set as a replica.
        jobs: dict[tuple[str, ...] | None, Job] = {}
        ran_once = False
        self.log.info(
            "daemon.start",
            f"watching {self.settings.repo} branch {self.settings.branch}",
            repo=self.settings.repo,
            branch=self.settings.branch,
            poll_interval=interval,
            state=self.state.status,
            generation=self.state.generation,
        )
        while True:
            self.wake.clear()
            poll_due = self._poll_requested
            self._poll_requested = False
            if clock.now() >= next_poll:
                poll_due = True
                next_poll = clock.now() + interval
            for key, job in list(jobs.items()):
                if job.done:
                    self._finish(job)
                    del jobs[key]
                    if once:
                        ran_once = True
            if self._shutdown.is_set():
                return self._shut_down(list(jobs.values()))
            if once and ran_once:
                return self._once_status()
            tip = self._fetch() if not (once and jobs) else None
            if tip is not None:
                self._consider(tip, list(jobs.values()))
            if not jobs:
                self.pool.prune()  # between jobs: hosts unused for a while lose their connection
            started = self._next_jobs(poll_due, busy=jobs)
            for job in started:
                jobs[job.buildsets] = job
                self._start(job)
            if once and not jobs:
                return self._once_status()
            clock.sleep(max(0.0, next_poll - clock.now()), self.wake)

    def _once_status(self) -> int:
        if self.state.rejected is not None and self.state.rejected == self._last_tip:
            return 1
        return 0 if self.state.status == "converged" else 1

    def _shut_down(self, jobs: list[Job]) -> int:
        if not jobs:
            self.log.info("daemon.stop", "stopped")
            return 0
        generation = jobs[0].generation
        self.log.info(
            "daemon.stopping", "stopping: the running step finishes first", generation=generation
        )
        for job in jobs:
            job.stop.set()
        deadline = self.hooks.clock.now() + self.stop_grace
        for job in jobs:
            assert job.thread is not None
            job.thread.join(max(0.0, deadline - self.hooks.clock.now()))
            if job.thread.is_alive():
                self.log.error(
                    "daemon.stop",
                    f"the running step did not reach a safe point within {self.stop_grace:g}s; "
                    "exiting anyway (the next start resumes from the facts)",
                    generation=job.generation,
                )
                return 1
            self._finish(job)
        self.log.info("daemon.stop", "stopped at a safe point", generation=generation)
        return 0

    # --- steps of an iteration ----------------------------------------------------

    def _fetch(self) -> str | None:
        try:
            self.mirror.fetch()
        except UserError as exc:
            self.log.warning("repo.fetch", f"{exc}; keeping the last known state")
            return self._last_tip
        self.observer.polled()
        tip = self.mirror.tip(self.settings.branch)
        if tip is None and not self._unknown_branch_logged:
            self.log.warning(
                "repo.branch",
                f"branch {self.settings.branch} does not exist in {self.settings.repo}; "
                "waiting for it",
            )
            self._unknown_branch_logged = True
        self._last_tip = tip
        return tip

    def _next_jobs(self, poll_due: bool, busy: Mapping[tuple[str, ...] | None, Job]) -> list[Job]:
        """The jobs to start now: at most one, or, as a replica, one per held set that is due."""
        if self.keeper is not None:
            return self._next_replica_jobs(poll_due, busy)
        job = None if busy else self._next_job(poll_due)
        return [job] if job is not None else []

    def _accept_pending(self) -> Config:
        assert self._pending is not None
        generation, config = self._pending
        self._pending = None
        self._config = config
        self._save(self.state.accepted(generation))
        self._share.new_generation()
        self._record(records.validated(config, title=self._commit_title(generation)))
        return config

    def _next_job(self, poll_due: bool) -> Job | None:
        if self._shutdown.is_set():
            return None
        if self._pending is not None:
            config = self._accept_pending()
            return Job("apply", config.commit or "", config)
        current, status = self.state.generation, self.state.status
        kind: JobKind
        if status == "applying" or (status == "incomplete" and poll_due):
            kind = "apply"
        elif status == "converged" and poll_due:
            kind = "drift"
        else:
            return None  # nothing accepted yet, failed (wait for a new commit), or not due
        loaded = self._current_config() if current else None
        return Job(kind, current, loaded) if current and loaded else None

    def _current_config(self) -> Config | None:
        """The accepted generation's config (loaded again after a restart)."""
        generation = self.state.generation
        if generation is None:
            return None
        if self._config is not None and self._config.commit in (generation, None):
            return self._config
        if self.settings.require_signed_commits:
            verdict = verify_commit(
                self.mirror.path, generation, allowed_signers=self.allowed_signers
            )
            if not verdict.trusted:
                self.log.error("generation.untrusted", verdict.reason, generation=generation)
                self._save(self.state.with_status("failed", verdict.reason))
                return None
        try:
            loaded = self.hooks.load_config(self.mirror.path, generation)
        except UserError as exc:
            self.log.error("generation.unreadable", str(exc), generation=generation)
            self._save(self.state.with_status("failed", str(exc)))
            return None
        current = replace(loaded, origin=self.settings.repo)
        self._config = current
        return current

    def _start(self, job: Job) -> None:
        sets = f" ({', '.join(job.buildsets)})" if job.buildsets else ""
        if job.kind == "apply":
            self.log.info(
                "rollout.start",
                f"rolling out {_short(job.generation)}{sets}",
                generation=job.generation,
            )
        else:
            self.log.debug(
                "drift.check",
                f"checking hosts against {_short(job.generation)}",
                generation=job.generation,
            )
        self._observe_start(job)
        job.thread = threading.Thread(
            target=self._work, args=(job,), name=f"converge-{job.kind}", daemon=True
        )
        job.thread.start()

    def _work(self, job: Job) -> None:
        """The worker thread: run the job, then wake the loop."""
        try:
            try:
                ledger = self._ledger_for(job.config)
                if self.keeper is not None and self._taken_over_failed(job, ledger):
                    return
            except BaseException as exc:
                job.error = exc
                return
            keeper = self.keeper
            steps = None if keeper is None else functools.partial(only_its_set, job, keeper)
            run_job(
                job,
                self.hooks.converge,
                settings=self.settings,
                ledger=ledger,
                progress=functools.partial(self._progress, job),
                pool=self.pool,
                may_continue=steps,
            )
        finally:
            self.wake.set()

    def _progress(self, job: Job, event: Event) -> None:
        self.observer.progress(job, event)
        level = self.log.warning if event.kind == EventKind.WARNING else self.log.info
        if job.kind == "drift" and event.kind == EventKind.INFO:
            level = self.log.debug  # "in sync" every poll is noise; changes still show
        level(
            f"rollout.{event.kind}",
            event.message,
            generation=job.generation,
            buildset=event.buildset,
            host=event.host,
        )

    def _finish(self, job: Job) -> None:
        """Turn a finished job into the next state, with log lines a human can act on."""
        self._observe_finish(job)
        if job.generation != self.state.generation:
            return  # superseded by a generation accepted while it ran
        if self.keeper is not None and job.buildsets:
            self._finish_set(job, job.buildsets[0])
            return
        if job.error is not None:
            if isinstance(job.error, UserError):
                # Ledger unwritable, hosts' repo unreachable ...: look again at the next poll.
                self.log.error("rollout.error", str(job.error), generation=job.generation)
                if job.kind == "apply":
                    self._save(self.state.with_status("incomplete", str(job.error)))
                return
            self.log.error(
                "rollout.crash",
                f"unexpected error: {job.error!r}; not retrying {_short(job.generation)} "
                "until a new commit",
                exc=True,
                generation=job.generation,
            )
            self._save(self.state.with_status("failed", repr(job.error)))
            return
        report = job.report
        assert report is not None
        # An idle poll (a drift check that found every host as it should be) is debug:
        # two info lines a minute of "in sync" would bury what happened.
        idle = job.kind == "drift" and all(r.outcome == HostOutcome.SUCCESS for r in report.results)
        say = self.log.debug if idle else self.log.info
        for line in report.summary:
            say("rollout.summary", line, generation=job.generation)
        verdict = judge(report.converged, report.interrupted, (r.outcome for r in report.results))
        failed = [r for r in report.results if r.outcome in FAILED_HOST_OUTCOMES]
        if verdict != "incomplete":
            self._last_incomplete = None  # the next wait is news again
        if verdict == "failed":
            reason = "; ".join(f"{r.host}: {r.outcome}: {r.message}" for r in failed)
            self.log.error(
                "generation.failed",
                f"generation {_short(job.generation)} failed ({reason}); it is not retried "
                "until a new commit arrives",
                generation=job.generation,
            )
            self._save(self.state.with_status("failed", reason))
        elif verdict == "converged":
            if job.kind == "apply" or self.state.status != "converged":
                drifted = ", ".join(report.drifted)
                drift = f"; drift left as is on {drifted}" if drifted else ""
                self.log.info(
                    "generation.converged",
                    f"every host is on {_short(job.generation)}{drift}",
                    generation=job.generation,
                )
            self._save(self.state.with_status("converged"))
            self.mirror.housekeeping()
        elif verdict == "incomplete":
            waiting = _describe(
                r
                for r in report.results
                if r.outcome not in (HostOutcome.SUCCESS, HostOutcome.SKIPPED)
            )
            # Said once per reason: a rollout held by a window or a soak is
            # "incomplete" at every poll for hours, and a warning a minute of the
            # same words would bury the one that changed.
            said = (job.generation, waiting)
            warn = self.log.warning if said != self._last_incomplete else self.log.debug
            self._last_incomplete = said
            warn(
                "generation.incomplete",
                f"not every host is on {_short(job.generation)} yet ({waiting}); "
                "looking again at the next poll",
                generation=job.generation,
            )
            if job.kind == "apply":
                self._save(self.state.with_status("incomplete"))
        else:
            self.log.info(
                "rollout.interrupted",
                f"rollout of {_short(job.generation)} stopped at a safe point",
                generation=job.generation,
            )

    # --- ledger and state -----------------------------------------------------------

    def _status_branch(self, config: Config | None) -> str:
        chosen = config or self._config
        return chosen.policy.status_branch if chosen else ReconcilerPolicy().status_branch

    def _ledger_for(self, config: Config | None) -> Recorder:
        branch = self._status_branch(config)
        if branch not in self._ledgers:
            self._ledgers[branch] = self.hooks.ledger(self.mirror.path, branch)
            self._observe_ledger(self._ledgers[branch])
        return self._ledgers[branch]

    def _record(self, record: Record) -> None:
        try:
            ledger = self._ledger_for(None)
            once = once_per_commit(record) if self.keeper is not None else None
            if once is not None and isinstance(ledger, Ledger):
                # Every replica sees the commit: one validated (or rejected) record of it.
                ledger.record(record, once=once)
            else:
                ledger.record(record)
            self.observer.recorded()
        except UserError as exc:
            self.log.error(
                "ledger.error",
                f"cannot record '{record.subject}': {exc}",
                generation=record.generation,
            )

    def _save(self, state: DaemonState) -> None:
        self.state = state
        try:
            save_state(self.state_path, state)
        except OSError as exc:
            self.log.error("state.error", f"cannot save {self.state_path}: {exc.strerror}")

    # --- observers (status page, metrics, notifications) ---------------------------

    def _observe_start(self, job: Job) -> None:
        job.started_at = self.hooks.clock.now()
        self.observer.job_started(job)

    def _observe_finish(self, job: Job) -> None:
        self.observer.job_finished(job, max(0.0, self.hooks.clock.now() - job.started_at))

    def _observe_ledger(self, recorder: Recorder) -> None:
        if isinstance(recorder, Ledger):
            recorder.on_conflict = lambda: self.observer.ledger_conflict()


def _describe(results: Iterable[HostResult]) -> str:
    items = list(results)
    return ", ".join(f"{r.host} {r.outcome}" for r in items) or "no host results"
