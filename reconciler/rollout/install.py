"""Carrying out a host's install steps (the plan decided them; this only acts and records).

Boot-environment installs follow tools/build/beinstall.sh (the running system
is left untouched; a failed install destroys the half-made BE) and boot the
new BE once with ``bectl activate -t``; in-place installs follow the
handbook's order. The phase recorded before every irreversible act
(activation, reboot) is what lets the planner tell, after a restart,
"rebooted and fell back" from "not rebooted yet".
"""

from __future__ import annotations

from reconciler import remote
from reconciler.errors import CommandTimeout
from reconciler.facts.host import HostFacts
from reconciler.plan import Step, Target, target_for, verify_problems, wanted_files
from reconciler.plan.install import Running
from reconciler.rollout import confirm as confirming
from reconciler.rollout import jobs, packages, scripts, smoke
from reconciler.rollout.health import Rounds, soak
from reconciler.rollout.host import HostRun, StepResult
from reconciler.rollout.reboot import boottime, reboot_and_wait
from reconciler.statusstore import utc_now
from reconciler.transport.ssh import Connection
from reconciler.vocabulary import (
    INSTALL_STEPS,
    EventKind,
    HostOutcome,
    LedgerOutcome,
    Phase,
    StepKind,
)

INSTALL_TIMEOUT = 6 * 3600.0


def _target(w: HostRun) -> Target:
    ctx = w.run.ctx
    return target_for(ctx.config, w.run.buildset, w.host, w.run.progress)


def _describe(w: HostRun) -> str:
    src = w.run.ctx.config.source
    return f"build {remote.short(w.build)} ({src.branch} {src.short})"


def _fail(
    w: HostRun,
    step: StepKind,
    message: str,
    body: str = "",
    outcome: HostOutcome = HostOutcome.FAILURE,
) -> StepResult:
    rolled_back = outcome == HostOutcome.ROLLED_BACK
    w.record(
        message,
        LedgerOutcome.ROLLED_BACK if rolled_back else LedgerOutcome.FAILURE,
        step,
        phase=Phase.ROLLED_BACK if rolled_back else Phase.FAILED,
        body=body,
        with_facts=True,
    )
    return StepResult(outcome, message)


# -- config files -----------------------------------------------------------


def write_config(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Write the files the plan names; healed when no install follows."""
    ctx = w.run.ctx
    wanted = wanted_files(ctx.config, w.run.buildset, w.host)
    paths = [p for p in step.detail.get("files", ()) if p in wanted]
    conn = w.conn()
    for path in paths:
        conn.write_file(path, wanted[path])
    what = ", ".join(paths)
    # Healed: the files were all that differed. Before a build or an install
    # (which read them) they are part of that.
    rest = w.plan.steps[1:] if w.plan else ()
    before = next(
        (s.kind for s in rest if s.kind in INSTALL_STEPS or s.kind == StepKind.BUILD), None
    )
    w.record(
        f"wrote {what} ({step.reason})" + (f" before the {before}" if before else ""),
        LedgerOutcome.STARTED if before else LedgerOutcome.HEALED,
        StepKind.WRITE_CONFIG,
    )
    return StepResult.done()


def report_drift(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """drift: report: one record per generation, nothing changed on the host."""
    w.record(
        f"drift: {step.reason}",
        LedgerOutcome.DRIFT,
        StepKind.REPORT_DRIFT,
        drift_reported=w.run.ctx.generation,
    )
    return StepResult(HostOutcome.DRIFT, step.reason)


# -- installs ---------------------------------------------------------------


def _marker(w: HostRun) -> str:
    return scripts.marker_text(
        build_id=w.build,
        revision=w.run.ctx.config.source.revision,
        kernconf=w.host.kernconf,
        generation=w.run.ctx.generation,
        when=utc_now(),
    )


def _job(target: Target, kind: StepKind, facts: HostFacts) -> scripts.Job:
    """The detached job a step starts or follows."""
    if not target.in_place:
        return scripts.install_job(target.build, target.be_job_part)
    if kind == StepKind.INSTALL_KERNEL:
        return scripts.install_job(target.build, "kernel")
    if kind == StepKind.INSTALL_WORLD:
        return scripts.install_job(target.build, "world")
    # await-install in place: the kernel job until the new kernel runs, then the world's
    kernel_runs = Running.of(facts).kernel_is(target)
    return scripts.install_job(target.build, "world" if kernel_runs else "kernel")


def install(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Start the install job the step names, record it, follow it to its end."""
    target = _target(w)
    conn = w.conn()
    conn.run(scripts.prepare_dirs(remote.DB_DIR, remote.LOG_DIR), timeout=60)
    job = _job(target, step.kind, facts)
    running = Running.of(facts)
    if step.kind == StepKind.INSTALL:
        files = wanted_files(w.run.ctx.config, w.run.buildset, w.host)
        if target.pkgset is not None:  # world, kernel and packages switch together
            only = step.detail.get("mode") == "packages"
            command = packages.be_install_command(
                w, target, facts, _marker(w), files, packages_only=only
            )
        else:
            command = scripts.be_install_command(
                target.build,
                target.kernconf,
                _marker(w),
                files["/etc/make.conf"],
                files["/etc/src.conf"],
                w.run.buildset.rollout.smoke_checks,
            )
        what = f"installing {_describe(w)} into boot environment {target.be}"
        if target.pkgset is not None:
            what += f" with package set {remote.short(target.pkgset)}"
        phase = Phase.INSTALLING
    elif step.kind == StepKind.INSTALL_KERNEL:
        command = scripts.inplace_kernel_command(target.build, target.kernconf)
        what = f"installing {_describe(w)} (kernel first)"
        phase = Phase.INSTALLING
    else:
        # etcupdate -B reuses the objdir: only where it is writable (src.sys.obj.mk),
        # which on the build host it is; NFS clients mount it read-only.
        command = scripts.inplace_world_command(
            target.build, _marker(w), reuse_objdir=w.host.name == w.run.buildset.build_host
        )
        what = f"installing the world of {_describe(w)}"
        phase = Phase.KERNEL_INSTALLED
    w.record(what, LedgerOutcome.STARTED, step.kind, phase=phase, previous_be=running.booted_be)
    try:
        jobs.start(conn, job, command)
    except jobs.JobError as exc:
        return _fail(w, step.kind, str(exc))
    return _follow(w, step.kind, conn, job, target)


def await_install(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Re-attach to an install job a stopped or killed reconciler left running."""
    target = _target(w)
    conn = w.conn()
    job = _job(target, step.kind, facts)
    result = _follow(w, step.kind, conn, job, target)
    if result.outcome is None and not (target.in_place and job.name.startswith("install-world")):
        # The step the plan stated is in the ledger like every other (an in-place
        # world's end is recorded by _follow, with its phase).
        w.record(f"re-attached: {job.name} ended", LedgerOutcome.STARTED, step.kind)
    return result


def _follow(
    w: HostRun, kind: StepKind, conn: Connection, job: scripts.Job, target: Target
) -> StepResult:
    try:
        state = w.follow(conn, job, EventKind.INSTALL, INSTALL_TIMEOUT)
    except CommandTimeout as exc:
        return _fail(w, kind, str(exc))
    if state.state == "running":  # asked to stop: the install goes on, detached
        return StepResult(
            HostOutcome.WAITING, f"stopped; {job.name} goes on, the next run re-attaches"
        )
    if state.state == "finished" and state.exit_code == 0:
        if target.in_place and job.name.startswith("install-world"):
            w.record(
                "world installed; the reboot after it is due",
                LedgerOutcome.STARTED,
                kind,
                phase=Phase.WORLD_INSTALLED,
            )
        return StepResult.done()
    tail = jobs.LogFollower(job, lambda _: None).tail(conn, 30)
    why = (
        f"exit {state.exit_code}"
        if state.state == "finished"
        else "the job died without an exit status (host rebooted?)"
    )
    conflicts = [text.strip() for text in tail if text.strip().startswith("C ")]
    subject = f"{job.name} failed ({why})"
    failed_checks = smoke.failures(tail)
    if failed_checks:
        subject = (
            f"smoke test in {target.be} failed: {'; '.join(failed_checks)}; "
            f"{target.be} destroyed, no reboot"
        )
    elif conflicts:
        subject = f"{job.name} failed: etcupdate conflicts in {', '.join(c[2:] for c in conflicts)}"
    return _fail(w, kind, subject, body="Last lines of " + job.log + ":\n" + "\n".join(tail))


# -- reboots ------------------------------------------------------------------


def reboot(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """(Boot-environment: activate the new BE once, then) reboot and wait for the new boot."""
    target = _target(w)
    conn = w.conn()
    running = Running.of(facts)
    if target.in_place:
        phase = Phase.REBOOTING_KERNEL if not running.kernel_is(target) else Phase.REBOOTING_WORLD
    else:
        phase = Phase.REBOOTING
        # Confirm or revert: the new BE boots with a watchdog that brings the
        # previous one back unless we confirm it (reconciler/rollout/watchdog.py).
        problem = confirming.arm(w, target, running.booted_be)
        if problem is not None:
            return _fail(w, step.kind, problem)
        if running.next_boot_be != target.be:
            out = conn.run(["bectl", "activate", "-t", target.be], timeout=120)
            if not out.ok:
                return _fail(
                    w,
                    step.kind,
                    f"bectl activate -t {target.be} failed: {(out.stderr or out.stdout).strip()}",
                )
            w.record(
                f"{target.be} activated for the next boot only",
                LedgerOutcome.STARTED,
                step.kind,
                phase=Phase.ACTIVATED,
            )
    # The boot time goes into the ledger with the phase: a reconciler killed
    # between this record and the shutdown sees on restart that the host
    # never went down (the one case no other fact shows, after installworld).
    before = facts.boottime or boottime(conn)
    if not w.reboot_as_server():
        return StepResult(HostOutcome.WAITING, "stopped before the reboot (NFS clients)")
    try:
        w.record(
            f"rebooting ({phase})", LedgerOutcome.STARTED, step.kind, phase=phase, boottime=before
        )
        timeout = float(w.run.buildset.rollout.reboot_timeout)
        came_back = reboot_and_wait(
            conn,
            w.host,
            timeout=timeout,
            clock=w.run.ctx.clock,
            poll=w.run.ctx.poll,
            before=before,
        )
    finally:
        w.run.ctx.nfs.end_reboot(w.host.name)
    if not came_back:
        # bectl activate -t falls back only when the failed boot reboots by itself
        # (the boot blocks consumed the one-shot); a hang stays hung.
        previous = running.booted_be or "its previous boot environment"
        hint = (
            f"; down: if the new system panicked it comes back on {previous} by itself; "
            f"after a hang it boots {previous} on its next power cycle"
            if not target.in_place
            else ""
        )
        return _fail(w, step.kind, f"did not come back within {timeout:g}s after reboot{hint}")
    if phase == Phase.REBOOTING_KERNEL:
        after = Running.of(w.observe())
        if after.kernel_is(target):
            w.record(
                f"booted kernel {target.kernconf} ({target.hash12})",
                LedgerOutcome.STARTED,
                step.kind,
                phase=Phase.KERNEL_INSTALLED,
            )
    return StepResult.done()


def record_fallback(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    target = _target(w)
    if target.in_place:
        return _fail(w, step.kind, step.reason)
    message = confirming.fallback_message(w, target, Running.of(facts))
    return _fail(w, step.kind, message, outcome=HostOutcome.ROLLED_BACK)


# -- confirm ------------------------------------------------------------------


def confirm(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Verify, health-check, soak (test stage), then make the activation permanent."""
    target = _target(w)
    conn = w.conn()
    problems = verify_problems(facts, target)
    if problems:
        return _roll_back(w, conn, target, "verification failed: " + "; ".join(problems))
    # Progress, not outcomes: no ledger commit. A restart finds the host on
    # its one-shot activation (or its phase says rebooting) and confirms again.
    w.say("verified; running health checks")
    rounds = Rounds(w.run.buildset.rollout.health_checks, w.run.ctx.clock)  # each at its interval
    failures = rounds.run(conn)
    if not failures and not target.in_place:
        # Verified and healthy: confirm the boot over a new SSH connection, so
        # its watchdog stands down before the soak (which may outlast it).
        decision = confirming.confirm_boot(w, target)
        if not decision.confirmed:
            return _fail(
                w,
                StepKind.CONFIRM,
                f"not confirmed: {decision.message}; its watchdog reverts it to its previous "
                "boot environment by itself",
                outcome=HostOutcome.ROLLED_BACK,
            )
    seconds = w.run.buildset.rollout.soak if target.needs_test else 0
    if not failures and seconds > 0:
        w.say(f"healthy; soaking for {seconds}s")

        def one_round() -> list[str]:
            again = w.conn()
            return verify_problems(w.observe(), target) + rounds.run(again)

        clock = w.run.ctx.clock
        failures = soak(one_round, seconds=float(seconds), clock=clock, every=rounds.every)
    if failures:
        return _roll_back(w, conn, target, "health check failed: " + "; ".join(failures))
    if not target.in_place:
        # A permanent activation leaves a pending one-shot in place (libbe
        # be_activate): cancel any first, so the next boot is the one we keep.
        conn.run(scripts.cancel_oneshot_command(), timeout=120)
        out = conn.run(["bectl", "activate", target.be], timeout=120)
        if not out.ok:
            return _roll_back(
                w, conn, target, f"bectl activate {target.be} failed: {out.stderr.strip()}"
            )
        confirming.finish(w)
    installed = dict(w.run.progress.host(w.host.name).installed_bes)
    if not target.in_place:
        # what an instant revert checks later: the BE as this host confirmed it
        created = Running.of(w.observe()).created.get(target.be)
        if created is not None:
            installed[target.be] = created
    confirmed = "" if target.in_place else "; confirmed over a new SSH connection"
    w.record(
        f"installed {_describe(w)} and healthy{confirmed}",
        LedgerOutcome.SUCCESS,
        StepKind.CONFIRM,
        phase=Phase.DONE,
        with_facts=True,
        installed_bes=installed,
    )
    return StepResult.done()


def _roll_back(w: HostRun, conn: Connection, target: Target, why: str) -> StepResult:
    kind = StepKind.CONFIRM
    if target.in_place:
        return _fail(
            w,
            kind,
            why + " (in-place installs have no automatic rollback: boot "
            "/boot/kernel.old by hand if needed)",
        )
    entry = w.run.progress.host(w.host.name)
    running = Running.of(w.observe())
    previous = entry.previous_be or (
        running.permanent_be if running.permanent_be != target.be else None
    )
    if not previous or previous == target.be:
        return _fail(w, kind, why + "; no previous boot environment known to roll back to")
    w.record(
        f"{why}; rolling back to boot environment {previous}",
        LedgerOutcome.STARTED,
        kind,
        phase=Phase.REBOOTING,
        body=why,
    )
    confirming.stand_down(w)  # the watchdog of this boot must not revert it a second time
    conn.run(scripts.cancel_oneshot_command(), timeout=120)  # or the one-shot wins the boot
    out = conn.run(["bectl", "activate", previous], timeout=120)
    if not out.ok:
        return _fail(w, kind, f"{why}; and bectl activate {previous} failed: {out.stderr.strip()}")
    if not reboot_and_wait(
        conn,
        w.host,
        timeout=float(w.run.buildset.rollout.reboot_timeout),
        clock=w.run.ctx.clock,
        poll=w.run.ctx.poll,
    ):
        return _fail(w, kind, f"{why}; rolled back to {previous} but it did not come back")
    where = Running.of(w.observe()).booted_be
    return _fail(
        w, kind, f"{why}; rolled back to {where}", body=why, outcome=HostOutcome.ROLLED_BACK
    )
