"""Build steps: once per build id, on the build host, detached, followed by its log."""

from __future__ import annotations

from reconciler import remote
from reconciler.errors import CommandTimeout, TransportError
from reconciler.facts.host import HostFacts
from reconciler.plan import Step, wanted_files
from reconciler.rollout import jobs, scripts
from reconciler.rollout.host import HostRun, StepResult
from reconciler.statusstore import Update, utc_now
from reconciler.vocabulary import EventKind, HostOutcome, LedgerOutcome, Stage, StepKind

BUILD_TIMEOUT = 24 * 3600.0
_HEX = frozenset("0123456789abcdef")


def build(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Start the build (make.conf/src.conf were written by the plan's earlier step), follow it."""
    run, b = w.run, w.build
    bs = run.buildset
    conn = w.conn()
    inputs = (
        f"build={b}\nrevision={run.ctx.config.source.revision}\narch={bs.arch}\n"
        f"kernconfs={' '.join(bs.kernconfs)}\nstarted={utc_now()}\n"
    )
    conn.run(scripts.prepare_dirs(f"{remote.objdir(b)}/{remote.BUILD_META}"), timeout=60)
    conn.write_file(f"{remote.objdir(b)}/{remote.BUILD_INPUTS}", inputs)
    # The build and every install of it read these (__MAKE_CONF, SRCCONF), not /etc.
    files = wanted_files(run.ctx.config, bs, w.host)
    conn.write_file(f"{remote.objdir(b)}/{remote.BUILD_MAKE_CONF}", files["/etc/make.conf"])
    conn.write_file(f"{remote.objdir(b)}/{remote.BUILD_SRC_CONF}", files["/etc/src.conf"])
    run.record(
        Update(
            subject=f"{bs.name}: build {remote.short(b)} started on {w.host.name} "
            f"(KERNCONF={' '.join(bs.kernconfs)})",
            stage=Stage.BUILD,
            outcome=LedgerOutcome.STARTED,
            step=StepKind.BUILD,
            host=w.host.name,
            rollout={"stage": str(Stage.BUILD)},
        )
    )
    try:
        jobs.start(conn, scripts.build_job(b), scripts.build_command(b, bs.jobs, bs.kernconfs))
    except jobs.JobError as exc:
        return _failed(w, step, str(exc), "")
    return _follow(w, step)


def await_build(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    w.say(f"re-attaching to the running build {remote.short(w.build)}", EventKind.BUILD)
    return _follow(w, step)


def _follow(w: HostRun, step: Step) -> StepResult:
    run, b = w.run, w.build
    bs = run.buildset
    job = scripts.build_job(b)
    conn = w.conn()
    try:
        result = w.follow(conn, job, EventKind.BUILD, BUILD_TIMEOUT)
    except (CommandTimeout, TransportError) as exc:
        return _failed(w, step, str(exc), "")
    if result.state == "running":  # asked to stop: the build goes on, detached
        return StepResult(
            HostOutcome.WAITING,
            f"stopped; build {remote.short(b)} goes on on {w.host.name}, the next run re-attaches",
        )
    if result.state == "finished" and result.exit_code == 0:
        run.record(
            Update(
                subject=f"{bs.name}: build {remote.short(b)} finished on {w.host.name}",
                stage=Stage.BUILD,
                outcome=LedgerOutcome.SUCCESS,
                step=step.kind,
                host=w.host.name,
            )
        )
        prune(w)
        return StepResult.done()
    tail = jobs.LogFollower(job, lambda _: None).tail(conn, 25)
    why = (
        f"make exited {result.exit_code}"
        if result.state == "finished"
        else "the build died without an exit status (build host rebooted?)"
    )
    return _failed(w, step, why, "Last lines of " + job.log + ":\n" + "\n".join(tail))


def _failed(w: HostRun, step: Step, why: str, body: str) -> StepResult:
    return build_failed(
        w, step, f"build {remote.short(w.build)} failed on {w.host.name}: {why}", body
    )


def build_failed(w: HostRun, step: Step, message: str, body: str, after: str = "") -> StepResult:
    """A failed build-stage job (world or packages): its ledger record and the host's result.

    ``after`` ends the record's subject only ("; nothing installed").
    """
    w.run.record(
        Update(
            subject=f"{w.run.buildset.name}: {message}{after}",
            stage=Stage.BUILD,
            outcome=LedgerOutcome.FAILURE,
            step=step.kind,
            host=w.host.name,
            body=body,
            rollout={"outcome": "failed", "stage": str(Stage.BUILD)},
        )
    )
    return StepResult(HostOutcome.FAILURE, message, body)


def prune(w: HostRun) -> None:
    """Keep the newest ``keep_builds`` builds (always the current one) in /usr/obj."""
    conn = w.conn()
    listing = conn.run(["ls", "-1t", remote.OBJ], timeout=60)
    builds = [n for n in listing.stdout.split() if len(n) == 64 and set(n) <= _HEX]
    keep = [w.build] + [b for b in builds if b != w.build]
    keep = keep[: max(1, w.run.buildset.rollout.keep_builds)]
    if len(builds) > len(keep):
        conn.run(scripts.prune_builds_command(keep), timeout=3600)
        w.say(f"kept the newest {len(keep)} builds in /usr/obj", EventKind.BUILD)
