"""One host's install: from whatever state it is in to running the build, or back.

Each call reads the host afresh, asks rollout.decide what to do next, does
that one thing and records it; a bounded loop repeats until the host runs
the build (success), has been put back (rolled-back) or cannot go on
(failure). The phase recorded before every irreversible action (activation,
reboot) is what lets a restarted reconciler tell "rebooted and fell back"
from "not rebooted yet".
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler import remote
from reconciler.config.buildid import short
from reconciler.config.model import Host
from reconciler.errors import CommandTimeout, TransportError
from reconciler.facts.observe import observe_host
from reconciler.rollout import jobs, scripts
from reconciler.rollout.context import SetRun
from reconciler.rollout.decide import HostView, decide_be, decide_in_place
from reconciler.rollout.engine_types import HostResult
from reconciler.rollout.health import run_health_checks, soak
from reconciler.rollout.reboot import boottime, reboot_and_wait
from reconciler.rollout.state import utc_now
from reconciler.rollout.view import read_view, verify_problems
from reconciler.transport.ssh import Connection

#: Enough for the longest path (install, activate, reboot, confirm) twice over.
MAX_STEPS = 16
INSTALL_TIMEOUT = 6 * 3600.0


@dataclass
class HostRun:
    run: SetRun
    host: Host
    stage: str
    soak_seconds: int

    # -- small helpers ----------------------------------------------------

    @property
    def b(self) -> str:
        return self.run.build_id

    @property
    def be(self) -> str:
        return scripts.be_name(self.b)

    @property
    def hash12(self) -> str:
        return self.run.ctx.config.source.short

    def phase(self) -> str:
        return self.run.state.phase(self.host.name, self.b)

    def say(self, message: str) -> None:
        self.run.ctx.say("host", message, self.run.buildset, self.host)

    def record(
        self, subject: str, outcome: str, phase: str, body: str = "", **extra: object
    ) -> None:
        """A ledger commit for this host; a final outcome carries the host's fresh facts."""
        facts = None
        if outcome in ("success", "failure", "rolled-back"):
            try:
                facts = observe_host(self.conn(), self.run.ctx.config, self.host).to_json()
            except TransportError:
                facts = None  # the host is gone: the previous facts stay
        self.run.state.record(
            f"{self.host.name}: {subject}",
            generation=self.run.ctx.generation,
            stage=self.stage,
            outcome=outcome,
            build=self.b,
            host=self.host.name,
            phase=phase,
            body=body,
            host_fields=dict(extra) if extra else None,
            facts=facts,
            message=subject,
        )
        self.say(subject)

    def result(self, outcome: str, message: str) -> HostResult:
        return HostResult(self.host.name, self.run.buildset.name, self.stage, outcome, message)

    def conn(self) -> Connection:
        return self.run.ctx.conn(self.host)

    def describe_build(self) -> str:
        src = self.run.ctx.config.source
        return f"build {short(self.b)} ({src.branch} {src.short})"

    # -- the loop -----------------------------------------------------------

    def converge(self) -> HostResult:
        try:
            return self._converge()
        except TransportError as exc:
            message = f"lost contact: {exc}"
            self.record(message, "failure", "failed")
            return self.result("failure", message)
        except jobs.JobError as exc:
            self.record(str(exc), "failure", "failed")
            return self.result("failure", str(exc))

    def _converge(self) -> HostResult:
        in_place = self.run.buildset.rollout.install == "in-place"
        for _ in range(MAX_STEPS):
            conn = self.conn()
            view = read_view(conn, self.run.ctx.config, self.host)
            phase = self.phase()
            if in_place:
                action = decide_in_place(
                    view,
                    build_id=self.b,
                    kernconf=self.host.kernconf,
                    hash12=self.hash12,
                    kernel_job=jobs.job_state(conn, scripts.install_job(self.b, "kernel")),
                    world_job=jobs.job_state(conn, scripts.install_job(self.b, "world")),
                    phase=phase,
                    rebooted=self._rebooted_since_phase(conn, phase),
                )
            else:
                action = decide_be(
                    view,
                    build_id=self.b,
                    kernconf=self.host.kernconf,
                    hash12=self.hash12,
                    be=self.be,
                    job=jobs.job_state(conn, scripts.install_job(self.b)),
                    phase=phase,
                )
            done = self._act(action, conn, view)
            if done is not None:
                return done
        message = (
            f"gave up after {MAX_STEPS} steps without converging (last phase {self.phase()!r})"
        )
        self.record(message, "failure", "failed")
        return self.result("failure", message)

    def _act(self, action: str, conn: Connection, view: HostView) -> HostResult | None:
        if action == "in-sync":
            if self.stage == "test" and not self.run.state.tested(self.b):
                return self._confirm(conn, permanent=False)
            return self.result("success", f"runs {self.describe_build()}")
        if action == "confirm":
            return self._confirm(conn, permanent=not self._in_place())
        if action in ("install", "install-kernel"):
            self._write_marker_dirs(conn)
            marker = self._marker()
            if action == "install":
                command = scripts.be_install_command(self.b, self.host.kernconf, marker)
                job = scripts.install_job(self.b)
            else:
                command = scripts.inplace_kernel_command(self.b, self.host.kernconf)
                job = scripts.install_job(self.b, "kernel")
            self.record(
                f"installing {self.describe_build()}"
                + (
                    f" into boot environment {self.be}"
                    if action == "install"
                    else " (kernel first)"
                ),
                "started",
                "installing",
                previous_be=view.booted_be,
            )
            jobs.start(conn, job, command)
            return self._follow(conn, job)
        if action == "install-world":
            job = scripts.install_job(self.b, "world")
            jobs.start(conn, job, scripts.inplace_world_command(self.b, self._marker()))
            result = self._follow(conn, job)
            if result is None:
                self.record("world installed; rebooting", "started", "world-installed")
            return result
        if action == "wait-install":
            job = scripts.install_job(
                self.b,
                "world"
                if view.kernel_is(self.host.kernconf, self.hash12) and self._in_place()
                else ("kernel" if self._in_place() else ""),
            )
            return self._follow(conn, job)
        if action == "install-failed":
            part = (
                ""
                if not self._in_place()
                else ("world" if view.kernel_is(self.host.kernconf, self.hash12) else "kernel")
            )
            return self._install_failed(conn, scripts.install_job(self.b, part))
        if action == "activate-reboot":
            out = conn.run(["bectl", "activate", "-t", self.be], timeout=120)
            if not out.ok:
                return self._fail(
                    f"bectl activate -t {self.be} failed: {(out.stderr or out.stdout).strip()}"
                )
            self.record(f"{self.be} activated for the next boot only", "started", "activated")
            return self._reboot(conn, "rebooting")
        if action == "reboot":
            return self._reboot(conn, "rebooting")
        if action == "reboot-kernel":
            return self._reboot(conn, "rebooting-kernel", after="kernel-installed")
        if action == "reboot-world":
            return self._reboot(conn, "rebooting-world")
        if action == "fell-back":
            return self._fail(
                f"came back on boot environment {view.booted_be}, not {self.be}: the new kernel "
                f"did not boot (running {view.running_ident} {view.running_hash12}); the one-shot "
                "activation let it fall back",
                outcome="rolled-back",
            )
        if action == "kernel-fell-back":
            return self._fail(
                "after installkernel and reboot it runs "
                f"{view.running_ident} {view.running_hash12}, "
                f"not {self.host.kernconf} {self.hash12}"
            )
        raise AssertionError(f"unknown action {action}")

    # -- pieces ---------------------------------------------------------------

    def _in_place(self) -> bool:
        return self.run.buildset.rollout.install == "in-place"

    def _marker(self) -> str:
        return scripts.marker_text(
            build_id=self.b,
            revision=self.run.ctx.config.source.revision,
            kernconf=self.host.kernconf,
            generation=self.run.ctx.generation,
            when=utc_now(),
        )

    def _write_marker_dirs(self, conn: Connection) -> None:
        conn.run(scripts.prepare_dirs(remote.DB_DIR, remote.LOG_DIR), timeout=60)

    def _follow(self, conn: Connection, job: scripts.Job) -> HostResult | None:
        def line(text: str) -> None:
            if text.startswith(">>> "):
                self.run.ctx.say("install", text[4:], self.run.buildset, self.host)

        try:
            state = jobs.wait(
                conn, job, timeout=INSTALL_TIMEOUT, clock=self.run.ctx.clock, on_line=line
            )
        except CommandTimeout as exc:
            return self._fail(str(exc))
        if state.state == "finished" and state.exit_code == 0:
            return None
        return self._install_failed(conn, job)

    def _install_failed(self, conn: Connection, job: scripts.Job) -> HostResult:
        state = jobs.job_state(conn, job)
        tail = jobs.LogFollower(job, lambda _: None).tail(conn, 30)
        why = (
            f"exit {state.exit_code}"
            if state.state == "finished"
            else "the job died without an exit status (host rebooted?)"
        )
        conflicts = [line.strip() for line in tail if line.strip().startswith("C ")]
        subject = f"{job.name} failed ({why})"
        if conflicts:
            subject = (
                f"{job.name} failed: etcupdate conflicts in {', '.join(c[2:] for c in conflicts)}"
            )
        return self._fail(subject, body="Last lines of " + job.log + ":\n" + "\n".join(tail))

    def _fail(self, message: str, body: str = "", outcome: str = "failure") -> HostResult:
        self.record(message, outcome, "failed" if outcome == "failure" else "rolled-back", body)
        return self.result(outcome, message)

    def _reboot(self, conn: Connection, phase: str, after: str | None = None) -> HostResult | None:
        # The boot time goes into the ledger with the phase: a reconciler killed
        # between this record and the shutdown sees on restart that the host
        # never went down (the one case no other fact shows, after installworld).
        try:
            before = boottime(conn)
        except TransportError:
            before = ""
        self.record(f"rebooting ({phase})", "started", phase, boottime=before)
        came_back = reboot_and_wait(
            conn,
            self.host,
            timeout=float(self.run.buildset.rollout.reboot_timeout),
            clock=self.run.ctx.clock,
            poll=self.run.ctx.poll,
            before=before,
        )
        if not came_back:
            return self._fail(
                f"did not come back within {self.run.buildset.rollout.reboot_timeout}s after reboot"
                + (
                    "; its one-shot activation will put it back on its previous boot environment "
                    "at its next boot"
                    if not self._in_place()
                    else ""
                )
            )
        if after is not None:
            view = read_view(self.conn(), self.run.ctx.config, self.host)
            if view.kernel_is(self.host.kernconf, self.hash12):
                self.record(f"booted kernel {self.host.kernconf} ({self.hash12})", "started", after)
        return None

    def _confirm(self, conn: Connection, *, permanent: bool) -> HostResult:
        """Verify, health-check, soak (test stage), then make the activation permanent."""
        problems = self._verify(conn)
        if problems:
            return self._roll_back(conn, "verification failed: " + "; ".join(problems))
        # Progress, not outcomes: no ledger commit. A restart finds the host on
        # its one-shot activation (or its phase says rebooting) and confirms again.
        self.say("verified; running health checks")
        checks = self.run.buildset.rollout.health_checks
        failures = run_health_checks(conn, checks)
        if not failures and self.soak_seconds > 0:
            self.say(f"healthy; soaking for {self.soak_seconds}s")
            failures = soak(
                lambda: self._soak_round(),
                seconds=float(self.soak_seconds),
                clock=self.run.ctx.clock,
            )
        if failures:
            return self._roll_back(conn, "health check failed: " + "; ".join(failures))
        if permanent:
            out = conn.run(["bectl", "activate", self.be], timeout=120)
            if not out.ok:
                return self._roll_back(
                    conn, f"bectl activate {self.be} failed: {out.stderr.strip()}"
                )
        self.record(f"installed {self.describe_build()} and healthy", "success", "done")
        return self.result("success", f"installed {self.describe_build()}")

    def _rebooted_since_phase(self, conn: Connection, phase: str) -> bool:
        """False when a reboot was recorded and the boot time has not changed since."""
        if not phase.startswith("rebooting"):
            return True
        recorded = self.run.state.host_entry(self.host.name).get("boottime")
        return not recorded or boottime(conn) != recorded

    def _verify(self, conn: Connection) -> list[str]:
        """What differs between the running host and the build (uname -i, uname -v, marker, BE)."""
        return verify_problems(
            read_view(conn, self.run.ctx.config, self.host),
            build_id=self.b,
            kernconf=self.host.kernconf,
            hash12=self.hash12,
            be=None if self._in_place() else self.be,
        )

    def _soak_round(self) -> list[str]:
        """One soak check: still running the build (no reboot in between), and healthy."""
        conn = self.conn()
        return self._verify(conn) + run_health_checks(conn, self.run.buildset.rollout.health_checks)

    def _roll_back(self, conn: Connection, why: str) -> HostResult:
        if self._in_place():
            return self._fail(
                why + " (in-place installs have no automatic rollback: boot "
                "/boot/kernel.old by hand if needed)"
            )
        entry = self.run.state.host_entry(self.host.name)
        view = read_view(conn, self.run.ctx.config, self.host)
        previous = entry.get("previous_be") or (
            view.permanent_be if view.permanent_be != self.be else None
        )
        if not previous or previous == self.be:
            return self._fail(why + "; no previous boot environment known to roll back to")
        self.record(
            f"{why}; rolling back to boot environment {previous}", "started", "rebooting", body=why
        )
        out = conn.run(["bectl", "activate", previous], timeout=120)
        if not out.ok:
            return self._fail(f"{why}; and bectl activate {previous} failed: {out.stderr.strip()}")
        if not reboot_and_wait(
            conn,
            self.host,
            timeout=float(self.run.buildset.rollout.reboot_timeout),
            clock=self.run.ctx.clock,
            poll=self.run.ctx.poll,
        ):
            return self._fail(f"{why}; rolled back to {previous} but it did not come back")
        after = read_view(self.conn(), self.run.ctx.config, self.host)
        where = after.booted_be
        message = f"{why}; rolled back to {where}"
        self.record(message, "rolled-back", "rolled-back", body=why)
        return self.result("rolled-back", message)
