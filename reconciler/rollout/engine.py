"""Rollout engine: one generation of the config repo, each build set stage by stage.

The engine plans each build set from the facts (reconciler.plan, the one
decider) and runs the stages of :data:`reconciler.rollout.stages.STAGES`
in order; each stage carries out its hosts' plans step by step, observing
and planning again after every step, and records every outcome in the
ledger, so a reconciler killed anywhere continues where the facts and the
ledger say. A build set whose plan has nothing to do on any host it can
reach writes nothing. Nothing here raises for a host's trouble: that is a
HostResult. A set whose plan has a preflight problem (reconciler.plan.preflight)
is halted before its first stage: one ledger record, no host of it touched.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from typing import TypeVar

from reconciler.clock import Clock, SystemClock, wall_now
from reconciler.config.buildid import build_id
from reconciler.config.model import BuildSet, Config
from reconciler.facts.connect import fleet_pool, fleet_resolver
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe_with
from reconciler.ledger import Ledger
from reconciler.plan import BuildSetPlan, plan_buildset, shared_plan
from reconciler.plan.packages import package_set
from reconciler.remote import short
from reconciler.rollout.context import Context, SetRun
from reconciler.rollout.engine_types import Event, HostResult, Report, settled
from reconciler.rollout.host import HostRun
from reconciler.rollout.stages import STAGES
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore, Update
from reconciler.transport.pool import ConnectionPool
from reconciler.vocabulary import EventKind, HostOutcome, LedgerOutcome, RolloutStatus, Stage
from reconciler.vocabulary import StepKind as Kind

_T = TypeVar("_T")

__all__ = ["Event", "HostResult", "Report", "converge"]


def converge(
    config: Config,
    *,
    settings: Settings,
    ledger: Ledger,
    buildsets: Sequence[str] | None = None,
    progress: Callable[[Event], None] = lambda event: None,
    stop: threading.Event | None = None,
    clock: Clock | None = None,
    poll: float = 0.5,
    facts: Mapping[str, HostFacts] | None = None,
    retry_quarantined: bool = False,
    hosts: Sequence[str] | None = None,
    pool: ConnectionPool | None = None,
    may_continue: Callable[[str], bool] | None = None,
    wall: Callable[[], datetime] | None = None,
) -> Report:
    """Bring every host of the selected build sets to ``config``; record every outcome.

    ``facts``: hosts as just observed (``apply`` planned from them); the rest
    are observed here. Never raises for a host's failure (that is a result);
    raises only for errors that stop everything (the ledger cannot be
    written). ``stop`` is checked between steps: a running step finishes,
    then the function returns with ``interrupted=True``. ``retry_quarantined``:
    this run tries quarantined builds again (``apply --retry-quarantined``);
    ``hosts``: only these hosts' steps (``apply --host``).

    ``pool``: the caller's connections (the daemon keeps one pool for its
    life, reconciler.transport.pool); it is pointed at ``config``'s hosts and
    left open. Without it the connections of this call close when it returns.
    ``may_continue(set)`` is asked before each step of a build set (a replica
    whose lease on the set lapsed: False, the set stops at its next step
    boundary without a ledger record: the set is no longer its to write); the
    src host's shared steps belong to whoever may continue the src host's set,
    the other sets wait for them. ``wall``: the wall clock maintenance windows
    and freezes are judged by (default: the system's, reconciler.clock.wall_now).
    """
    only = frozenset(hosts) if hosts else None
    selected = [
        bs
        for bs in ([config.buildset(name) for name in buildsets] if buildsets else config.buildsets)
        if only is None or any(h.name in only for h in bs.hosts)
    ]
    store = StatusStore(ledger)
    results: list[HostResult] = []
    summary: list[str] = []
    interrupted = False
    with contextlib.ExitStack() as owned:
        if pool is None:
            pool = owned.enter_context(fleet_pool(config, settings))
        else:
            pool.use(fleet_resolver(config, settings))
        ctx = Context(
            config,
            settings,
            pool,
            clock or SystemClock(),
            progress,
            stop or threading.Event(),
            poll,
            only,
            may_continue=may_continue or (lambda buildset: True),
            wall=wall or wall_now,
        )
        names = list(
            dict.fromkeys([config.src_host] + [h.name for bs in selected for h in bs.hosts])
        )
        known = dict(facts or {})
        missing = [n for n in names if n not in known]
        if missing:
            known.update(observe_with(pool, config, missing, parallel=settings.parallel))
        # Preflight, before anything is touched: a set with a problem is halted
        # here, and when none may go on, not even the src host's shared steps run.
        going = []
        for bs in selected:
            held = _preflight(ctx, bs, store, known, retry_quarantined)
            if held is None:
                going.append(bs)
            else:
                results += held[0]
                summary.append(held[1])
        # The src host serves every build set: its steps come first, once.
        shared = _shared(ctx, store, known) if going else None
        if shared is not None and shared.outcome == HostOutcome.WAITING:
            return _waiting_everywhere(going, shared)
        if shared is not None and not settled(shared.outcome):
            halted = _halted_everywhere(going, shared)
            return Report(
                False,
                False,
                tuple(results) + halted.results,
                tuple(summary) + halted.summary,
            )
        if shared is not None:
            known.pop(config.src_host)
            known.update(observe_with(pool, config, [config.src_host]))
        # Build sets are independent from here on: each runs in its own thread,
        # so one set's soak or slow build does not hold the other back.
        outcomes = _in_threads(
            lambda bs: _converge_buildset(ctx, bs, store, known, retry_quarantined), going
        )
        for set_results, line, stopped in outcomes:
            results += set_results
            summary.append(line)
            interrupted = interrupted or stopped
    converged = not interrupted and all(settled(r.outcome) for r in results)
    return Report(converged, interrupted, tuple(results), tuple(summary))


def _shared(ctx: Context, store: StatusStore, known: Mapping[str, HostFacts]) -> HostResult | None:
    """Carry out the shared src host plan; None when it had nothing to do."""
    config = ctx.config
    src = config.src
    first = shared_plan(config, known.get(src.name))
    if not first.steps or not first.reachable:
        return None  # an unreachable src host shows in each set's plan and halts it there
    bs = config.buildset(src.buildset)
    if not ctx.may_continue(bs.name):
        why = f"the src host's steps wait for the reconciler that holds build set {bs.name}"
        return HostResult(src.name, bs.name, Stage.SOURCE, HostOutcome.WAITING, why)
    run = SetRun(ctx, bs, build_id(config, bs), store.fleet_writer(ctx.generation))
    ctx.say(EventKind.STAGE, "source (src host, shared by every build set)")
    return HostRun(run, src, Stage.SOURCE).converge(
        lambda hf: shared_plan(config, hf), known.get(src.name)
    )


def _halted_everywhere(selected: Sequence[BuildSet], failed: HostResult) -> Report:
    why = f"src host {failed.host}: {failed.message}"
    results = [
        HostResult(h.name, bs.name, h.stage, HostOutcome.SKIPPED, f"not started: {why}")
        for bs in selected
        for h in bs.hosts
    ]
    summary = [f"{bs.name}: halted at the source stage ({why})" for bs in selected]
    return Report(False, False, (failed, *results), tuple(summary))


def _waiting_everywhere(selected: Sequence[BuildSet], waiting: HostResult) -> Report:
    """Another replica carries out the src host's steps: nothing starts here yet."""
    results = [
        HostResult(
            h.name, bs.name, h.stage, HostOutcome.WAITING, waiting.message, gated=waiting.gated
        )
        for bs in selected
        for h in bs.hosts
        if h.name != waiting.host
    ]
    summary = [f"{bs.name}: waiting ({waiting.message})" for bs in selected]
    return Report(False, False, (waiting, *results), tuple(summary))


def actionable(plan: BuildSetPlan) -> bool:
    """Whether the plan asks anything of a host it could reach."""
    return any(s.kind != Kind.UNREACHABLE for s in plan.steps)


def _set_facts(ctx: Context, bs: BuildSet, known: Mapping[str, HostFacts]) -> dict[str, HostFacts]:
    return {name: known[name] for name in [ctx.config.src_host, *(h.name for h in bs.hosts)]}


def _preflight(
    ctx: Context,
    bs: BuildSet,
    store: StatusStore,
    known: Mapping[str, HostFacts],
    retry_quarantined: bool,
) -> tuple[list[HostResult], str] | None:
    """Halt ``bs`` if its plan, made from the facts before anything ran, has a problem."""
    b = build_id(ctx.config, bs)
    writer = store.writer(
        bs.name,
        ctx.generation,
        b,
        quarantine=not retry_quarantined,
        packages=package_set(ctx.config, bs),
    )
    run = SetRun(ctx, bs, b, writer)
    plan = plan_buildset(ctx.config, bs, _set_facts(ctx, bs, known), run.progress, now=ctx.wall())
    return halt_preflight(run, plan) if actionable(plan) and plan.problems else None


def halt_preflight(run: SetRun, plan: BuildSetPlan) -> tuple[list[HostResult], str]:
    """Stop the set before its first stage, nothing touched: one ledger record, then none
    while the same problems stand (a daemon observes again at every poll).

    Its hosts are WAITING, not failed: fixing the problem needs no new commit, and
    the next run (the daemon's next poll) finds the set as it was.
    """
    bs, b, gen = run.buildset, run.unit, run.ctx.generation
    count = len(plan.problems)
    why = f"preflight found {count} problem{'s' if count != 1 else ''}: " + "; ".join(plan.problems)
    for problem in plan.problems:
        run.ctx.say(EventKind.WARNING, f"preflight: {problem}", bs)
    progress = run.progress
    recorded = (
        progress.generation == gen
        and progress.build == b
        and progress.status == RolloutStatus.FAILED
        and progress.preflight == plan.problem_keys
    )
    if not recorded:
        run.record(
            Update(
                subject=f"{bs.name}: rollout of {gen[:12]} halted before it started: {why}",
                stage=Stage.SOURCE,
                outcome=LedgerOutcome.HALTED,
                body="Preflight (nothing was changed on any host of the set):\n"
                + "\n".join(f"- {p}" for p in plan.problems),
                rollout={
                    "generation": gen,
                    "build": b,
                    "revision": run.ctx.config.source.revision,
                    "outcome": str(RolloutStatus.FAILED),
                    "stage": str(Stage.SOURCE),
                    "preflight": list(plan.problem_keys),
                },
            )
        )
    results = [
        HostResult(h.name, bs.name, h.stage, HostOutcome.WAITING, f"not started: {why}")
        for h in bs.hosts
    ]
    return results, f"{bs.name}: halted before its first stage: {why}"


def _in_threads(run: Callable[[BuildSet], _T], buildsets: list[BuildSet]) -> list[_T]:
    """``run`` for each build set in a thread of its own; the caller wakes twice a second.

    The caller is the main thread, where Python runs signal handlers. Blocked in
    a lock wait without a timeout it can miss the moment: a Ctrl-C sent during
    an install was acted on only once the whole rollout had ended (seen under
    load in tests/rollout/test_one_decider.py). A wait with a timeout returns to
    the interpreter, which runs a pending handler then.
    """
    with ThreadPoolExecutor(max_workers=len(buildsets) or 1, thread_name_prefix="set") as sets:
        futures = [sets.submit(run, bs) for bs in buildsets]
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.5)
        return [f.result() for f in futures]


def _converge_buildset(
    ctx: Context,
    bs: BuildSet,
    store: StatusStore,
    known: Mapping[str, HostFacts],
    retry_quarantined: bool = False,
) -> tuple[list[HostResult], str, bool]:
    b = build_id(ctx.config, bs)
    gen = ctx.generation
    writer = store.writer(
        bs.name, gen, b, quarantine=not retry_quarantined, packages=package_set(ctx.config, bs)
    )
    run = SetRun(ctx, bs, b, writer)
    unit = run.unit
    facts = _set_facts(ctx, bs, known)
    for name, hf in facts.items():
        if not hf.reachable:
            ctx.say(EventKind.WARNING, f"{name} unreachable: {hf.error}", bs)
    plan = plan_buildset(ctx.config, bs, facts, run.progress, ctx.hosts, now=ctx.wall())
    if actionable(plan) and plan.problems:
        # Found only now: after the shared source stage fetched the pinned revision.
        held, line = halt_preflight(run, plan)
        return held, line, False
    if not actionable(plan):
        # Nothing to change on any host it can reach: no ledger commit (a
        # daemon polling a fleet with one host down must not write every poll).
        if unit in run.progress.quarantined:
            ctx.say(EventKind.WARNING, f"build {short(b)} is quarantined; nothing done", bs)
        else:
            ctx.say(EventKind.INFO, f"in sync with generation {gen[:12]} (build {short(b)})", bs)
        in_sync = []
        planned = {(st.name, hp.host): hp for st in plan.stages for hp in st.hosts}
        for host in filter(ctx.selected, bs.hosts):
            hf, hp = facts[host.name], planned.get((host.stage, host.name))
            if not hf.reachable:
                outcome, message = HostOutcome.UNREACHABLE, str(hf.error)
            elif hp is not None and hp.held is not None:
                outcome, message = HostOutcome.SKIPPED, f"held: {hp.held}"
            elif hp is not None and hp.notes:
                outcome, message = HostOutcome.DRIFT, "; ".join(hp.notes)
            else:
                outcome, message = HostOutcome.SUCCESS, "in sync"
            in_sync.append(HostResult(host.name, bs.name, host.stage, outcome, message))
        down = [h.name for h in bs.hosts if not facts[h.name].reachable]
        tail = f"; unreachable: {', '.join(down)}" if down else ""
        if unit in run.progress.quarantined:
            return in_sync, f"{bs.name}: build {short(b)} is quarantined; nothing done", False
        return in_sync, f"{bs.name}: in sync (build {short(b)}){tail}", False

    progress = run.progress
    if (
        progress.generation != gen
        or progress.build != unit
        or progress.status != RolloutStatus.RUNNING
    ):
        installs = sum(
            1
            for st in plan.stages
            for h in st.hosts
            if h.reachable and h.steps and st.name in (Stage.TEST, Stage.PRODUCTION)
        )
        run.record(
            Update(
                subject=f"{bs.name}: rollout of {gen[:12]} started (build {short(b)}, "
                f"{installs} host(s) with steps)",
                stage=Stage.SOURCE,
                outcome=LedgerOutcome.STARTED,
                rollout={
                    "generation": gen,
                    "build": unit,
                    "revision": ctx.config.source.revision,
                    "outcome": str(RolloutStatus.RUNNING),
                    "stage": str(Stage.SOURCE),
                    "preflight": [],
                },
            )
        )

    results: list[HostResult] = []
    current = dict(facts)
    executed = False
    for stage in STAGES:
        ctx.say(EventKind.STAGE, str(stage.name), bs)
        done = stage.run(run, plan, current)
        results += done.results
        executed = executed or bool(done.touched) or bool(done.results)
        for name in done.touched:
            current.pop(name, None)
        if done.halted is not None:
            return results, f"{bs.name}: halted at the {stage.name} stage", False
        if done.waiting is not None:
            # A gate that opens by itself (a window, a freeze): nothing failed, nothing is
            # recorded; the next run (the daemon's next poll) plans again.
            ctx.say(EventKind.INFO, f"waiting: {done.waiting}", bs)
            return results, f"{bs.name}: waiting in the {stage.name} stage: {done.waiting}", False
        if done.stopped and not ctx.may_continue(bs.name):
            # The lease lapsed: another reconciler may own the set's records by now.
            ctx.say(EventKind.WARNING, f"lease lost: stopped in the {stage.name} stage", bs)
            return results, f"{bs.name}: stopped during the {stage.name} stage (lease lost)", True
        if done.stopped:
            waiting = [r.host for r in done.results if r.outcome == HostOutcome.WAITING]
            run.record(
                Update(
                    subject=f"{bs.name}: rollout of {gen[:12]} stopped at a safe point in the "
                    f"{stage.name} stage (asked to stop); it resumes where it stands",
                    stage=stage.name,
                    outcome=LedgerOutcome.INTERRUPTED,
                    body="Hosts not started or between steps: " + (", ".join(waiting) or "none"),
                )
            )
            return results, f"{bs.name}: stopped during the {stage.name} stage", True

    ok = all(settled(r.outcome) for r in results)
    whole = all(ctx.selected(h) for h in bs.hosts)  # apply --host: the set is not done yet
    if ok and whole and (executed or run.progress.status != RolloutStatus.CONVERGED):
        drift = [r.host for r in results if r.outcome == HostOutcome.DRIFT]
        run.record(
            Update(
                subject=f"{bs.name}: generation {gen[:12]} converged (build {short(b)})"
                + (f"; drift left as is on {', '.join(drift)}" if drift else ""),
                stage=Stage.PRODUCTION,
                outcome=LedgerOutcome.SUCCESS,
                rollout={"outcome": str(RolloutStatus.CONVERGED), "stage": "done"},
            )
        )
    line = f"{bs.name}: {'converged' if ok else 'not converged'} (build {short(b)}); " + ", ".join(
        f"{r.host} {r.outcome}" for r in results
    )
    return results, line, False
