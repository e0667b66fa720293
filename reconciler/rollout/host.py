"""One host through its plan: observe → plan → carry out the first step → observe again.

The loop ends when the host's plan is empty (success), a step ends the host
(failure, rolled back, drift recorded), the rollout is asked to stop (the
running step finishes first), or a bound on steps is reached. Every step is
decided by reconciler.plan from fresh facts and the recorded phase; nothing
here compares desired state with facts.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.model import Host
from reconciler.errors import TransportError
from reconciler.facts.host import HostFacts
from reconciler.plan import HostPlan
from reconciler.rollout import hostlock, jobs
from reconciler.rollout.context import SetRun
from reconciler.rollout.engine_types import HostResult
from reconciler.rollout.jobs import JobState
from reconciler.rollout.scripts import Job
from reconciler.statusstore import Update
from reconciler.transport.ssh import Connection
from reconciler.vocabulary import EventKind, HostOutcome, LedgerOutcome, Phase, Stage, StepKind

#: Enough for the longest chain (in place: kernel, reboot, world, reboot, confirm) twice over.
MAX_STEPS = 16
#: Loop turns that carry out no step: taking the host lock (first, and after each reboot
#: dropped it) and planning again under it.
LOCK_TURNS = 4
#: Steps that take a host down or change what it runs: they need its reboot group's slot.
DISRUPTIVE = frozenset(
    {
        StepKind.INSTALL,
        StepKind.INSTALL_KERNEL,
        StepKind.INSTALL_WORLD,
        StepKind.AWAIT_INSTALL,
        StepKind.INSTALL_PACKAGES,  # in place: pkg reads /usr/obj over NFS, restarts services
        StepKind.REBOOT,
    }
)

Planner = Callable[[HostFacts], HostPlan]


@dataclass(frozen=True)
class StepResult:
    """What carrying out one step did: ``outcome`` None means "done, plan again"."""

    outcome: HostOutcome | None = None
    message: str = ""
    detail: str = ""  # what a person needs to see about a failure (HostResult.detail)

    @classmethod
    def done(cls) -> StepResult:
        return cls()


@dataclass
class HostRun:
    run: SetRun
    host: Host
    stage: Stage
    executed: list[StepKind] = field(default_factory=list)
    #: the plan whose first step is being carried out (executors read what follows it)
    plan: HostPlan | None = None
    #: the reboot group slot this host holds until its loop ends
    _slot: threading.Semaphore | None = None
    #: whether it holds client tickets on its NFS servers (rollout.nfsgate)
    _nfs_client: bool = False
    #: the lock on the host itself (rollout.hostlock), from its first step to the loop's end
    _lock: hostlock.HostLock | None = None

    # -- helpers the step executors share ---------------------------------

    @property
    def build(self) -> str:
        return self.run.build_id

    def conn(self) -> Connection:
        return self.run.ctx.conn(self.host)

    def observe(self) -> HostFacts:
        return self.run.ctx.observe(self.host)

    def say(self, message: str, kind: EventKind = EventKind.HOST) -> None:
        self.run.ctx.say(kind, message, self.run.buildset, self.host)

    def follow(self, conn: Connection, job: Job, kind: EventKind, timeout: float) -> JobState:
        """Wait for the detached ``job``, its ``>>>`` lines passed on as ``kind`` events.

        Ends early, the job still running, when the rollout is asked to stop;
        raises CommandTimeout (and TransportError where the wait cannot ride it out).
        """

        def line(text: str) -> None:
            if text.startswith(">>> "):
                self.run.ctx.say(kind, text[4:], self.run.buildset, self.host)

        ctx = self.run.ctx
        return jobs.wait(
            conn, job, timeout=timeout, clock=ctx.clock, on_line=line, stopped=ctx.stop.is_set
        )

    def in_set(self) -> bool:
        return any(h.name == self.host.name for h in self.run.buildset.hosts)

    def record(
        self,
        subject: str,
        outcome: LedgerOutcome,
        step: StepKind,
        *,
        phase: Phase | None = None,
        body: str = "",
        with_facts: bool = False,
        **host_fields: Any,
    ) -> None:
        """A ledger commit for this host; a final outcome carries the host's fresh facts.

        A host of another build set (the src host seen from this set) gets a
        set-level record naming it: its status file belongs to its own set.
        """
        facts = None
        if with_facts:
            try:
                facts = self.observe().to_json()
            except TransportError:
                facts = None  # the host is gone: the previous facts stay
        mine = self.in_set()
        self.run.record(
            Update(
                subject=f"{self.host.name}: {subject}",
                stage=self.stage,
                outcome=outcome,
                step=step,
                host=self.host.name if mine else None,
                phase=phase if mine else None,
                body=body,
                facts=facts,
                host_fields=host_fields if mine else {},
            )
        )
        self.say(subject)

    def result(
        self, outcome: HostOutcome, message: str, detail: str = "", *, gated: bool = False
    ) -> HostResult:
        return HostResult(
            self.host.name, self.run.buildset.name, self.stage, outcome, message, detail, gated
        )

    # -- the loop -------------------------------------------------------------

    def converge(self, planner: Planner, facts: HostFacts | None = None) -> HostResult:
        """Carry out ``planner``'s steps for this host until its plan is empty (bounded).

        ``facts``: the host as just observed (None: observe it first).
        """
        try:
            return self._converge(planner, facts)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            if self._slot is not None:
                self._slot.release()
                self._slot = None
            if self._nfs_client:
                self.run.ctx.nfs.leave(self.host.name)
                self._nfs_client = False

    def _converge(self, planner: Planner, facts: HostFacts | None) -> HostResult:
        from reconciler.rollout.steps import carry_out  # the executors import this module

        ctx = self.run.ctx
        for _ in range(MAX_STEPS + LOCK_TURNS):
            try:
                current = facts if facts is not None else self.observe()
            except TransportError as exc:
                return self._lost(exc)
            facts = None
            plan = self.plan = planner(current)
            step = plan.first
            if step is None:
                return self._settled(plan)
            if plan.waits_at == 0 and plan.waiting is not None:
                # The plan says this step waits for a window or a freeze: no sleeping
                # until it opens; the next run (the daemon's next poll) plans again.
                self.say(f"{step.kind} waits: {plan.waiting}", EventKind.INFO)
                return self.result(HostOutcome.WAITING, plan.waiting, gated=True)
            if step.kind != StepKind.UNREACHABLE and self.run.stopping:
                return self.result(HostOutcome.WAITING, f"stopped before {step.kind}")
            if step.kind != StepKind.UNREACHABLE and not (self._lock and self._lock.held):
                try:
                    busy = self._take_lock(current)
                except TransportError as exc:
                    return self._lost(exc)
                except hostlock.LockError as exc:
                    return self.result(HostOutcome.FAILURE, f"{self.host.name}: {exc}")
                if busy is not None:
                    message = f"another reconciler ({busy}) is working on {self.host.name}"
                    self.say(f"waiting: {message}", EventKind.INFO)
                    return self.result(HostOutcome.WAITING, message, gated=True)
                assert self._lock is not None
                if self._lock.others_since:
                    continue  # another reconciler held it meanwhile: observe and plan again
            if step.kind in DISRUPTIVE and not (self._take_slot() and self._take_nfs()):
                return self.result(HostOutcome.WAITING, f"stopped waiting to {step.kind}")
            ctx.say(
                EventKind.STEP,
                f"{step.kind}: {step.reason}",
                self.run.buildset,
                self.host,
                step.kind,
            )
            try:
                outcome = carry_out(self, step, current)
            except TransportError as exc:
                return self._lost(exc)
            self.executed.append(step.kind)
            if outcome.outcome is not None:
                return self.result(outcome.outcome, outcome.message, outcome.detail)
        message = f"gave up after {MAX_STEPS} steps without converging"
        self.record(message, LedgerOutcome.FAILURE, StepKind.CONFIRM, phase=Phase.FAILED)
        return self.result(HostOutcome.FAILURE, message)

    def _take_lock(self, facts: HostFacts) -> str | None:
        """Take the host's own lock; None when held now, else who holds it (in words)."""
        if self._lock is None:
            who = hostlock.identity(hostlock.default_command(), self.run.ctx.config.origin)
            self._lock = hostlock.HostLock(self.conn(), who)
        return self._lock.acquire(hostlock.age_of(facts.observed_at))

    def _take_nfs(self) -> bool:
        """Client tickets on the NFS servers this host installs from (once per loop)."""
        if self._nfs_client:
            return True
        ctx = self.run.ctx
        servers = ctx.nfs_servers_of(self.host)
        if not ctx.nfs.enter(self.host.name, servers, ctx.stop.is_set):
            return False
        self._nfs_client = True
        return True

    def reboot_as_server(self) -> bool:
        """Before this host reboots: wait until no host installs from it; False if stopped."""
        ctx = self.run.ctx
        if not ctx.serves_nfs(self.host):
            return True
        waiting = ctx.nfs.holders(self.host.name)
        if waiting:
            self.say(
                f"waiting to reboot: {', '.join(sorted(waiting))} install from this host over NFS",
                EventKind.INFO,  # a wait is shown: the operator sees why nothing moves
            )
        return ctx.nfs.begin_reboot(self.host.name, ctx.stop.is_set)

    def _take_slot(self) -> bool:
        """Wait for a slot of the host's reboot group; False when asked to stop meanwhile."""
        group = self.host.group
        if group is None or self._slot is not None:
            return True
        slots = self.run.ctx.slots(group)
        if slots.acquire(blocking=False):
            self._slot = slots
            return True
        limit = self.run.ctx.config.max_down(group)
        self.say(
            f"waiting: reboot group {group} has {limit} host(s) down already (max_down)",
            EventKind.INFO,
        )
        while not self.run.ctx.stop.is_set():
            if slots.acquire(timeout=0.5):
                self._slot = slots
                self.say(f"reboot group {group}: my turn")
                return True
        return False

    def _settled(self, plan: HostPlan) -> HostResult:
        if StepKind.REPORT_DRIFT in self.executed or (plan.notes and not self.executed):
            return self.result(HostOutcome.DRIFT, "; ".join(plan.notes) or "drift recorded")
        healing = {StepKind.WRITE_CONFIG, StepKind.HEAL_PACKAGES}
        if self.executed and set(self.executed) <= healing:
            healed = [
                what
                for kind, what in (
                    (StepKind.WRITE_CONFIG, "config files rewritten"),
                    (StepKind.HEAL_PACKAGES, "packages reinstalled"),
                )
                if kind in self.executed
            ]
            return self.result(HostOutcome.HEALED, ", ".join(healed))
        return self.result(HostOutcome.SUCCESS, "in sync" if not self.executed else "done")

    def _lost(self, exc: TransportError) -> HostResult:
        message = f"lost contact: {exc}"
        with contextlib.suppress(TransportError):  # the ledger still takes it; the host not
            self.record(message, LedgerOutcome.FAILURE, StepKind.UNREACHABLE, phase=Phase.FAILED)
        return self.result(HostOutcome.FAILURE, message)
