"""The loop's intake: a new tip of the tracked branch, trusted and valid, or refused.

A mixin of :class:`reconciler.daemon.loop.Daemon`. A tip never seen before is
checked (signature policy, then the config loader); a refused one is
recorded in the ledger (outcome ``rejected``) once and remembered, and
nothing changes on hosts; an accepted one is queued (``_pending``) and stops
the rollouts of older generations after their running step. A generation the
ledger records as failed is not retried (a fresh work_dir knows nothing; the
ledger does).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reconciler.config.model import Config
from reconciler.daemon import records
from reconciler.daemon.jobs import Hooks, Job
from reconciler.daemon.logs import EventLog
from reconciler.daemon.mirror import Mirror
from reconciler.daemon.records import short as _short
from reconciler.daemon.state import DaemonState
from reconciler.daemon.trust import verify_commit
from reconciler.errors import ConfigInvalid, RepoError, UserError
from reconciler.gitutil import run_git
from reconciler.ledger import Ledger, Record
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore
from reconciler.vocabulary import RolloutStatus


class CommitIntake:
    """Checking new tips; the Daemon provides the state, the ledger and the log."""

    settings: Settings
    mirror: Mirror
    allowed_signers: Path | None
    hooks: Hooks
    log: EventLog
    state: DaemonState
    _pending: tuple[str, Config] | None
    _recheck_rejected: bool

    def _save(self, state: DaemonState) -> None:
        raise NotImplementedError

    def _record(self, record: Record) -> None:
        raise NotImplementedError

    def _consider(self, tip: str, jobs: list[Job]) -> None:
        """Check a tip that is new to the loop; queue it for rollout when it may be applied."""
        if tip == self.state.generation:
            self._pending = None  # the branch went back to what is being applied
            return
        if self._pending and self._pending[0] == tip:
            return
        recheck = tip == self.state.rejected
        if recheck and not self._recheck_rejected:
            return
        self._recheck_rejected = False
        if not recheck:
            self.log.info(
                "generation.new",
                f"new commit {_short(tip)} on {self.settings.branch}",
                generation=tip,
            )
        config = self._accept(tip, record=not recheck)
        if config is None:
            return
        failed = self._failed_in_ledger(config)
        if failed is not None:
            # A fresh work_dir knows nothing; the ledger does: never retry a failed generation.
            self.log.error(
                "generation.failed",
                f"generation {_short(tip)} failed earlier ({failed}); it is not retried "
                "until a new commit arrives",
                generation=tip,
            )
            self._save(self.state.accepted(tip).with_status("failed", failed))
            self._pending = None
            return
        self._pending = (tip, config)
        for job in jobs:
            if job.stop.is_set():
                continue
            self.log.info(
                "generation.superseded",
                f"newer commit {_short(tip)}: stopping the rollout of {_short(job.generation)} "
                "after the running step",
                generation=job.generation,
                newer=tip,
            )
            job.stop.set()

    def _accept(self, tip: str, *, record: bool) -> Config | None:
        """Trust and validity of ``tip``; a refusal is recorded (when ``record``) and remembered."""
        if self.settings.require_signed_commits:
            verdict = verify_commit(self.mirror.path, tip, allowed_signers=self.allowed_signers)
            if not verdict.trusted:
                refusal = records.untrusted(
                    tip, verdict, self.allowed_signers, title=self._commit_title(tip)
                )
                self._refuse(refusal, verdict.reason, record=record)
                return None
            self.log.info(
                "generation.trusted", verdict.reason, generation=tip, signer=verdict.signer
            )
        try:
            config = self.hooks.load_config(self.mirror.path, tip)
        except ConfigInvalid as exc:
            problems = [str(p) for p in exc.problems]
            refusal = records.invalid(tip, exc, title=self._commit_title(tip))
            self._refuse(refusal, str(exc), record=record, problems=problems)
            return None
        except RepoError as exc:
            refusal = records.unreadable(tip, str(exc), title=self._commit_title(tip))
            self._refuse(refusal, str(exc), record=record)
            return None
        if tip == self.state.rejected:
            self.log.info(
                "generation.accepted", f"commit {_short(tip)} is now accepted", generation=tip
            )
        # Managed headers on hosts name the repo as the administrator configured it, not our clone.
        return replace(config, origin=self.settings.repo)

    def _failed_in_ledger(self, config: Config) -> str | None:
        """Why the ledger says ``config``'s generation failed (a set's rollout.json), or None."""
        try:
            store = StatusStore(Ledger(self.mirror.path, config.policy.status_branch, "origin"))
            for bs in config.buildsets:
                progress = store.progress(bs.name)
                if progress.generation == config.commit and progress.status == RolloutStatus.FAILED:
                    return f"the ledger records the rollout of build set {bs.name} as failed"
        except UserError as exc:
            self.log.warning("ledger.read", f"cannot read the ledger's rollout records: {exc}")
        return None

    def _refuse(
        self, refusal: Record, reason: str, *, record: bool, problems: list[str] | None = None
    ) -> None:
        tip = refusal.generation
        self.log.error(
            "generation.rejected", reason, generation=tip, stage=refusal.stage, problems=problems
        )
        if record:
            self._record(refusal)
        self._save(self.state.refused(tip, reason))

    def _commit_title(self, commit: str) -> str:
        """The config commit's subject, for the ledger's validated/rejected records."""
        out = run_git(self.mirror.path, ("log", "-1", "--format=%s", commit, "--"))
        return out.text.strip() if out.returncode == 0 else ""
