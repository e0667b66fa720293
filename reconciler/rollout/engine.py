"""Rollout engine: one generation of the config repo, each build set stage by stage.

source → build → test → production, every step decided from fresh facts and
recorded in the ledger before and after it acts, so a reconciler killed
anywhere continues where the facts and the ledger say. The test stage must
pass with the very build id that production then gets; a failed test stops
the build set; production runs in parallel batches under a failure budget.
Nothing here raises for a host's trouble: that is a HostResult.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from reconciler.clock import Clock, SystemClock
from reconciler.config.buildid import build_id, short
from reconciler.config.model import BuildSet, Config, Host
from reconciler.errors import TransportError
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe_with
from reconciler.ledger import Ledger
from reconciler.rollout.build import BuildFailed, run_build_stage
from reconciler.rollout.configs import diff_lines, differing, write_configs
from reconciler.rollout.context import Context, SetRun
from reconciler.rollout.engine_types import Event, HostResult, Report
from reconciler.rollout.host import HostRun
from reconciler.rollout.source import SourceFailed, run_source_stage
from reconciler.rollout.state import RolloutState
from reconciler.rollout.view import view_of
from reconciler.settings import Settings
from reconciler.transport.pool import ConnectionPool

__all__ = ["Event", "HostResult", "Report", "converge"]


def converge(
    config: Config,
    *,
    settings: Settings,
    ledger: Ledger,
    buildsets: Sequence[str] | None = None,
    progress: Callable[[Event], None] = lambda event: None,
    stop: threading.Event | None = None,
    heal_drift: bool = True,
    clock: Clock | None = None,
    poll: float = 0.5,
) -> Report:
    """Bring every host of the selected build sets to ``config``; record every outcome.

    Never raises for a host's failure (that is a result); raises only for
    errors that stop everything (the ledger cannot be written). ``stop`` is
    checked between steps: a running step finishes, then the function returns
    with ``interrupted=True``. ``heal_drift=False`` (the daemon under
    ``drift: report``) records drift on hosts otherwise in sync without
    changing them.
    """
    selected = (
        [config.buildset(name) for name in buildsets] if buildsets else list(config.buildsets)
    )
    results: list[HostResult] = []
    summary: list[str] = []
    interrupted = False
    with ConnectionPool(config, settings) as pool:
        ctx = Context(
            config,
            settings,
            pool,
            clock or SystemClock(),
            progress,
            stop or threading.Event(),
            heal_drift,
            poll,
        )
        # Build sets are independent but for the src host's /usr/src (checked out
        # once, under ctx.source_lock): each runs in its own thread, so one set's
        # soak or slow build does not hold the other back.
        with ThreadPoolExecutor(max_workers=len(selected) or 1, thread_name_prefix="set") as sets:
            outcomes = list(sets.map(lambda bs: _converge_buildset(ctx, bs, ledger), selected))
        for set_results, line, stopped in outcomes:
            results += set_results
            summary.append(line)
            interrupted = interrupted or stopped
    converged = not interrupted and all(r.outcome in ("success", "healed") for r in results)
    return Report(converged, interrupted, tuple(results), tuple(summary))


def _needs_install(run: SetRun, host: Host, facts: HostFacts) -> bool:
    view = view_of(facts)
    return not view.runs(run.build_id, host.kernconf, run.ctx.config.source.short)


def _converge_buildset(
    ctx: Context, bs: BuildSet, ledger: Ledger
) -> tuple[list[HostResult], str, bool]:
    b = build_id(ctx.config, bs)
    run = SetRun(ctx, bs, b, RolloutState(ledger, bs.name))
    gen = ctx.generation
    names = list(dict.fromkeys([ctx.config.src_host] + [h.name for h in bs.hosts]))
    facts = observe_with(ctx.pool, ctx.config, names, parallel=ctx.settings.parallel)
    unreachable = [n for n in names if not facts[n].reachable]
    for name in unreachable:
        ctx.say("warning", f"{name} unreachable: {facts[name].error}", bs)

    reachable_hosts = [h for h in bs.hosts if facts[h.name].reachable]
    installs = [h for h in reachable_hosts if _needs_install(run, h, facts[h.name])]
    drifted = [h for h in reachable_hosts if h not in installs and differing(run, h, facts[h.name])]
    untested = not run.state.tested(b)
    src_behind = _src_behind(ctx, facts)
    if not installs and not drifted and not untested and not src_behind:
        # Nothing to change on any host it can reach: no ledger commit (a
        # daemon polling a fleet with one host down must not write every poll).
        ctx.say("info", f"in sync with generation {gen[:12]} (build {short(b)})", bs)
        in_sync = [
            HostResult(h.name, bs.name, h.stage, "success", "in sync")
            if facts[h.name].reachable
            else HostResult(h.name, bs.name, h.stage, "unreachable", str(facts[h.name].error))
            for h in bs.hosts
        ]
        down = f"; unreachable: {', '.join(unreachable)}" if unreachable else ""
        return in_sync, f"{bs.name}: in sync (build {short(b)}){down}", False

    if run.state.generation != gen or run.state.build != b or run.state.outcome != "running":
        run.state.record(
            f"{bs.name}: rollout of {gen[:12]} started (build {short(b)}, "
            f"{len(installs)} host(s) to install)",
            generation=gen,
            stage="source",
            outcome="started",
            build=b,
            changes={
                "generation": gen,
                "build": b,
                "revision": ctx.config.source.revision,
                "outcome": "running",
                "stage": "source",
            },
        )

    # 1. source
    ctx.say("stage", "source", bs)
    try:
        for what in run_source_stage(ctx, bs, facts):
            ctx.say("step", what, bs)
    except SourceFailed as exc:
        return _halt(run, "source", f"source stage failed: {exc}", bs), f"{bs.name}: {exc}", False
    if ctx.stop.is_set():
        return [], f"{bs.name}: stopped after the source stage", True

    # 2. build
    if installs or untested:
        ctx.say("stage", f"build {short(b)} on {bs.build_host}", bs)
        build_facts = observe_with(ctx.pool, ctx.config, [bs.build_host])[bs.build_host]
        if build_facts.obj_own_filesystem is False and bs.rollout.install == "boot-environment":
            ctx.say(
                "warning",
                f"{bs.build_host}: /usr/obj is not its own file system, so it lives "
                "in the boot environment and a BE switch loses the builds; create a dataset "
                "for it (zfs create -o mountpoint=/usr/obj zroot/usr/obj)",
                bs,
            )
        try:
            run_build_stage(run, build_facts)
        except BuildFailed as exc:
            return _halt(run, "build", str(exc), bs), f"{bs.name}: {exc}", False
    if ctx.stop.is_set():
        return [], f"{bs.name}: stopped after the build stage", True

    results: list[HostResult] = []
    # 3. test
    ctx.say("stage", "test", bs)
    for host in bs.test_hosts:
        results.append(_host_step(run, host, facts, "test", bs.rollout.soak))
        if ctx.stop.is_set():
            return results, f"{bs.name}: stopped during the test stage", True
    failed = [r for r in results if r.outcome not in ("success", "healed")]
    if failed:
        why = "; ".join(f"{r.host}: {r.message}" for r in failed)
        results += _untouched(bs.production_hosts, "test stage failed")
        return (
            results
            + _halt(
                run,
                "test",
                f"test stage failed, production untouched ({why})",
                bs,
                stage_results=False,
            ),
            f"{bs.name}: halted, test failed",
            False,
        )
    if not run.state.tested(b):
        run.state.record(
            f"{bs.name}: build {short(b)} passed the test stage on "
            f"{', '.join(h.name for h in bs.test_hosts)}",
            generation=gen,
            stage="test",
            outcome="success",
            build=b,
            changes={**run.state.mark_tested(b), "stage": "production"},
        )

    # 4. production, in parallel batches under the failure budget
    if not run.state.tested(b):  # never a production install of an untested build
        return (
            results
            + _halt(
                run,
                "production",
                f"build {short(b)} has not passed the test stage",
                bs,
                stage_results=False,
            ),
            f"{bs.name}: halted",
            False,
        )
    ctx.say("stage", "production", bs)
    hosts, servers = _production_order(ctx.config, bs)
    failures = 0
    batch = max(1, bs.rollout.batch)
    groups = [hosts[i : i + batch] for i in range(0, len(hosts), batch)] + [[s] for s in servers]
    for index, group in enumerate(groups):
        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="install") as pool:
            batch_results = list(
                pool.map(lambda h: _host_step(run, h, facts, "production", 0), group)
            )
        results += batch_results
        failures += sum(1 for r in batch_results if r.outcome not in ("success", "healed"))
        if failures > bs.rollout.max_failures:
            rest = [h for g in groups[index + 1 :] for h in g]
            results += _untouched(rest, "rollout halted")
            why = (
                f"{failures} production host(s) failed, more than max_failures="
                f"{bs.rollout.max_failures}; {len(rest)} host(s) not started"
            )
            return (
                results + _halt(run, "production", why, bs, stage_results=False),
                f"{bs.name}: halted in production",
                False,
            )
        if ctx.stop.is_set() and index + 1 < len(groups):
            return results, f"{bs.name}: stopped between production batches", True

    ok = failures == 0 and all(r.outcome in ("success", "healed") for r in results)
    if ok and (installs or run.state.outcome != "converged"):
        run.state.record(
            f"{bs.name}: generation {gen[:12]} converged (build {short(b)})",
            generation=gen,
            stage="production",
            outcome="success",
            build=b,
            changes={"outcome": "converged", "stage": "done"},
        )
    line = f"{bs.name}: {'converged' if ok else 'not converged'} (build {short(b)}); " + ", ".join(
        f"{r.host} {r.outcome}" for r in results
    )
    return results, line, False


def _production_order(config: Config, bs: BuildSet) -> tuple[list[Host], list[Host]]:
    """Production hosts in batches, then the NFS servers (src, build host) one at a time, last.

    Rebooting the host that serves /usr/src or /usr/obj while clients install
    from it would pull the files from under them.
    """
    serving = {config.src_host, bs.build_host}
    hosts = [h for h in bs.production_hosts if h.name not in serving]
    servers = [h for h in bs.production_hosts if h.name in serving]
    return hosts, servers


def _src_behind(ctx: Context, facts: dict[str, HostFacts]) -> bool:
    src = facts.get(ctx.config.src_host)
    return bool(
        src and src.reachable and src.source and src.source.revision != ctx.config.source.revision
    )


def _host_step(
    run: SetRun, host: Host, facts: dict[str, HostFacts], stage: str, soak: int
) -> HostResult:
    """Config files, then the install if the host does not run the build."""
    ctx = run.ctx
    host_facts = facts[host.name]
    if not host_facts.reachable:
        message = f"unreachable: {host_facts.error}"
        run.state.record(
            f"{host.name}: {message}",
            generation=ctx.generation,
            stage=stage,
            outcome="failure",
            build=run.build_id,
            host=host.name,
            message=message,
        )
        return HostResult(host.name, run.buildset.name, stage, "unreachable", message)

    def record(subject: str, outcome: str) -> None:
        run.state.record(
            f"{host.name}: {subject}",
            generation=ctx.generation,
            stage=stage,
            outcome=outcome,
            build=run.build_id,
            host=host.name,
            facts=host_facts.to_json(),
        )

    try:
        needs_install = _needs_install(run, host, host_facts)
        changed = differing(run, host, host_facts)
        if changed and not needs_install and not ctx.heal_drift:
            what = ", ".join(
                f"{p} differs: {diff_lines(_old(host_facts, p), t)} lines"
                for p, t in changed.items()
            )
            record(f"drift: {what} (drift: report, left as is)", "drift")
            return HostResult(host.name, run.buildset.name, stage, "drift", what)
        written = write_configs(run, host, host_facts, reason="desired state")
        if written and not needs_install:
            what = ", ".join(written)
            record(f"rewrote {what} (build {short(run.build_id)} unchanged: no reboot)", "healed")
    except TransportError as exc:
        return HostResult(host.name, run.buildset.name, stage, "unreachable", str(exc))
    result = HostRun(run, host, stage, soak).converge()
    if written and not needs_install and result.outcome == "success":
        return HostResult(host.name, run.buildset.name, stage, "healed", result.message)
    return result


def _old(facts: HostFacts, path: str) -> str | None:
    if facts.etc is None:
        return None
    return facts.etc.make_conf if path.endswith("make.conf") else facts.etc.src_conf


def _untouched(hosts: Sequence[Host], why: str) -> list[HostResult]:
    return [
        HostResult(h.name, h.buildset, h.stage, "skipped", f"not started: {why}") for h in hosts
    ]


def _halt(
    run: SetRun, stage: str, why: str, bs: BuildSet, *, stage_results: bool = True
) -> list[HostResult]:
    """Record that the build set's rollout stopped, and why; production stays untouched."""
    run.ctx.say("warning", why, bs)
    subject = f"{bs.name}: rollout halted at the {stage} stage: {why}"
    run.state.record(
        subject if len(subject) <= 200 else subject[:197] + "...",
        generation=run.ctx.generation,
        stage=stage,
        outcome="halted",
        build=run.build_id,
        body=why,
        changes={"outcome": "failed", "stage": stage},
    )
    if not stage_results:
        return []
    return [
        HostResult(h.name, bs.name, h.stage, "skipped", f"not started: {why}") for h in bs.hosts
    ]
