"""The rollout's stages as a list of objects with one signature.

Each stage gets the build set's run, the plan made at the start of the run
and the facts known so far, carries out its hosts' plans (re-planning after
every step, reconciler.rollout.host) and returns a frozen
:class:`StageOutcome`; none raises for a host's trouble. The engine loops
over :data:`STAGES` in order and stops at the first outcome that halts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from reconciler.config.model import BuildSet, Config, Host
from reconciler.facts.host import HostFacts
from reconciler.plan import (
    BuildSetPlan,
    HostPlan,
    build_host_plan,
    host_install_plan,
    source_host_plan,
)
from reconciler.plan.waves import budget, waves
from reconciler.remote import short
from reconciler.rollout.context import SetRun
from reconciler.rollout.engine_types import HostResult, settled
from reconciler.rollout.host import HostRun
from reconciler.statusstore import StatusStore, Update
from reconciler.vocabulary import (
    INSTALL_STEPS,
    EventKind,
    HostOutcome,
    LedgerOutcome,
    Stage,
    StepKind,
)


@dataclass(frozen=True)
class StageOutcome:
    results: tuple[HostResult, ...] = ()
    #: why the build set stops at this stage (already recorded in the ledger); None: go on
    halted: str | None = None
    #: asked to stop: the running steps finished, no new one was started
    stopped: bool = False
    #: hosts this stage changed, whose earlier facts are stale now
    touched: frozenset[str] = frozenset()
    #: why the set goes no further now although nothing failed (a closed maintenance
    #: window, a freeze, another reconciler on a host); None: not waiting
    waiting: str | None = None


class RolloutStage(Protocol):
    name: Stage

    def run(
        self, run: SetRun, plan: BuildSetPlan, facts: Mapping[str, HostFacts]
    ) -> StageOutcome: ...


def halt(run: SetRun, stage: Stage, why: str) -> str:
    """Record that the build set's rollout stopped at ``stage``, and why."""
    bs = run.buildset
    run.ctx.say(EventKind.WARNING, why, bs)
    run.record(
        Update(
            subject=f"{bs.name}: rollout halted at the {stage} stage: {why}",
            stage=stage,
            outcome=LedgerOutcome.HALTED,
            body=why,
            rollout={"outcome": "failed", "stage": str(stage)},
        )
    )
    return why


def _untouched(hosts: Sequence[Host], stage: Stage, why: str) -> tuple[HostResult, ...]:
    return tuple(
        HostResult(h.name, h.buildset, h.stage, HostOutcome.SKIPPED, f"not started: {why}")
        for h in hosts
    )


def _failed(result: HostResult) -> bool:
    """Counts against the stage: neither on the desired state nor merely stopped early."""
    return not settled(result.outcome) and result.outcome != HostOutcome.WAITING


def _converge(
    run: SetRun,
    host: Host,
    stage: Stage,
    planner: Callable[[HostFacts], HostPlan],
    facts: Mapping[str, HostFacts],
) -> HostResult:
    return HostRun(run, host, stage).converge(planner, facts.get(host.name))


class SourceStage:
    """A build host's exports (when it is not the src host) and the set's NFS mounts.

    The src host's own steps are the fleet's shared plan, done before any set's stages.
    """

    name = Stage.SOURCE

    def run(self, run: SetRun, plan: BuildSetPlan, facts: Mapping[str, HostFacts]) -> StageOutcome:
        bs, config = run.buildset, run.ctx.config
        touched: set[str] = set()
        results = []
        src = facts.get(config.src_host)
        if src is None or not src.reachable:
            why = (
                f"src host {config.src_host} is unreachable: {src.error if src else 'not observed'}"
            )
            why = halt(run, self.name, why)
            return StageOutcome(_untouched(bs.hosts, self.name, why), why)
        for hp in plan.stage(Stage.SOURCE).hosts:
            if hp.in_sync:
                continue
            host = config.host(hp.host)
            if not hp.reachable:
                continue  # its install step finds it unreachable and counts it

            def planner(hf: HostFacts, host: Host = host) -> HostPlan:
                return source_host_plan(config, bs, host, hf)

            result = _converge(run, host, self.name, planner, facts)
            touched.add(host.name)
            results.append(result)
            if result.gated:
                return StageOutcome(
                    tuple(results), touched=frozenset(touched), waiting=result.message
                )
            if result.outcome == HostOutcome.WAITING:
                return StageOutcome(stopped=True, touched=frozenset(touched))
            if not settled(result.outcome):
                why = halt(run, self.name, f"source stage failed: {result.message}")
                return StageOutcome(
                    _untouched(bs.hosts, self.name, why), why, touched=frozenset(touched)
                )
            if run.stopping:
                return StageOutcome(stopped=True, touched=frozenset(touched))
        return StageOutcome(touched=frozenset(touched))


class BuildStage:
    """The build host's config files, and the build if some host needs it."""

    name = Stage.BUILD

    def run(self, run: SetRun, plan: BuildSetPlan, facts: Mapping[str, HostFacts]) -> StageOutcome:
        bs, config = run.buildset, run.ctx.config
        needed = any(s.kind in INSTALL_STEPS for s in plan.steps)
        (hp,) = plan.stage(Stage.BUILD).hosts
        if hp.in_sync or (not hp.reachable and not needed):
            return StageOutcome()

        def planner(hf: HostFacts) -> HostPlan:
            return build_host_plan(config, bs, hf, run.progress, needed)

        result = _converge(run, bs.build, self.name, planner, facts)
        if result.gated:  # another reconciler builds there: wait, record nothing
            return StageOutcome(
                (result,), touched=frozenset({bs.build_host}), waiting=result.message
            )
        if result.outcome == HostOutcome.WAITING:
            return StageOutcome(stopped=True, touched=frozenset({bs.build_host}))
        if not settled(result.outcome):
            why = halt(run, self.name, result.message)
            # The build host's own result carries the failure's detail (the log's last lines).
            others = [h for h in bs.hosts if h.name != bs.build_host]
            return StageOutcome(
                (result, *_untouched(others, self.name, why)),
                why,
                touched=frozenset({bs.build_host}),
            )
        return StageOutcome(stopped=run.stopping, touched=frozenset({bs.build_host}))


def _install_planner(run: SetRun, host: Host) -> Callable[[HostFacts], HostPlan]:
    config, bs = run.ctx.config, run.buildset

    def planner(hf: HostFacts) -> HostPlan:
        return host_install_plan(config, bs, host, hf, run.progress, now=run.ctx.wall())

    return planner


class TestStage:
    """The test hosts first, one after another; production only after every one passed."""

    name = Stage.TEST

    def run(self, run: SetRun, plan: BuildSetPlan, facts: Mapping[str, HostFacts]) -> StageOutcome:
        bs, b = run.buildset, run.unit
        results: list[HostResult] = []
        for host in filter(run.ctx.selected, bs.test_hosts):
            results.append(_converge(run, host, self.name, _install_planner(run, host), facts))
            if run.stopping:
                return StageOutcome(tuple(results), stopped=True)
        failed = [r for r in results if _failed(r)]
        gated = [r for r in results if r.gated]
        if gated and not failed:
            # Not passed yet, not failed: production waits, and nothing is recorded.
            return StageOutcome(tuple(results), waiting=gated[0].message)
        if failed:
            why = "; ".join(f"{r.host}: {r.message}" for r in failed)
            why = halt(run, self.name, f"test stage failed, production untouched ({why})")
            # In the ledger, not a local file: every reconciler and apply sees it, and a
            # commit that changes nothing about the build does not retry it.
            StatusStore(run.writer.ledger).quarantine(
                bs.name,
                b,
                run.ctx.generation,
                f"test stage failed on {', '.join(r.host for r in failed)}",
            )
            return StageOutcome(
                tuple(results) + _untouched(bs.production_hosts, self.name, "test stage failed"),
                why,
            )
        store = StatusStore(run.writer.ledger)
        if b in store.quarantined(bs.name):
            # Tried again on purpose (apply --retry-quarantined) and it passed: lift it.
            store.release(
                bs.name, b, "its test stage, passed when retried", run.ctx.generation
            )
        every = all(run.ctx.selected(h) for h in bs.test_hosts)  # apply --host left some out
        if every and not run.progress.tested_build(b):
            run.record(
                Update(
                    subject=f"{bs.name}: {_what(run)} passed the test stage on "
                    f"{', '.join(h.name for h in bs.test_hosts)}",
                    stage=self.name,
                    outcome=LedgerOutcome.SUCCESS,
                    step=StepKind.CONFIRM,
                    rollout={**run.writer.tested_change(b), "stage": str(Stage.PRODUCTION)},
                )
            )
        return StageOutcome(tuple(results))


def _what(run: SetRun) -> str:
    """The unit a set rolls out, for people: its build, and its package set when it has one."""
    what = f"build {short(run.build_id)}"
    return what + (f" with package set {short(run.unit)}" if run.unit != run.build_id else "")


def production_order(config: Config, bs: BuildSet) -> tuple[list[Host], list[Host]]:
    """Production hosts in batches, then the NFS servers (src, build host) one at a time, last.

    Rebooting the host that serves /usr/src or /usr/obj while clients install
    from it would pull the files from under them.
    """
    serving = {config.src_host, bs.build_host}
    hosts = [h for h in bs.production_hosts if h.name not in serving]
    servers = [h for h in bs.production_hosts if h.name in serving]
    return hosts, servers


class ProductionStage:
    """The rest, in canary waves under a budget over the whole stage; never an untested build."""

    name = Stage.PRODUCTION

    def run(self, run: SetRun, plan: BuildSetPlan, facts: Mapping[str, HostFacts]) -> StageOutcome:
        bs, b = run.buildset, run.unit
        if not run.progress.tested_build(b):
            why = halt(run, self.name, f"build {short(b)} has not passed the test stage")
            return StageOutcome(halted=why)
        hosts, servers = production_order(run.ctx.config, bs)
        hosts, servers = (
            list(filter(run.ctx.selected, hosts)),
            list(filter(run.ctx.selected, servers)),
        )
        allowed = budget(bs.rollout.max_failures, len(bs.production_hosts))
        groups = waves(hosts, bs.rollout.batch) + [[s] for s in servers]
        results: list[HostResult] = []
        failures = 0
        for index, group in enumerate(groups):
            with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="install") as pool:
                done = list(
                    pool.map(
                        lambda h: _converge(run, h, self.name, _install_planner(run, h), facts),
                        group,
                    )
                )
            results += done
            failures += sum(1 for r in done if _failed(r))
            rest = [h for g in groups[index + 1 :] for h in g]
            if failures > allowed:
                why = halt(
                    run,
                    self.name,
                    f"{failures} production host(s) failed, more than max_failures="
                    f"{bs.rollout.max_failures} ({allowed} over the stage); "
                    f"{len(rest)} host(s) not started",
                )
                return StageOutcome(
                    tuple(results) + _untouched(rest, self.name, "rollout halted"), why
                )
            if run.stopping and rest:
                return StageOutcome(tuple(results), stopped=True)
        gated = [r for r in results if r.gated]
        return StageOutcome(tuple(results), waiting=gated[0].message if gated else None)


#: The stages, in order. Later issues add theirs here (packages after build).
STAGES: tuple[RolloutStage, ...] = (SourceStage(), BuildStage(), TestStage(), ProductionStage())
