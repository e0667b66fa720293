"""Pure rollout code: managed blocks, job states, soak schedule, scripts.

The install decisions are the planner's: tests/facts/test_plan_install.py.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
from pathlib import Path

import pytest

from reconciler.rollout import scripts
from reconciler.rollout.files import BEGIN, END, merge_block
from reconciler.rollout.health import soak, soak_schedule
from reconciler.rollout.jobs import JobState, LogFollower, parse_job_state
from reconciler.transport.command import quote
from reconciler.transport.ssh import Result

B = "3f2a9c1e0b7d" + "0" * 52


class TestManagedBlock:
    def test_added_then_replaced_then_removed_keeping_the_rest(self) -> None:
        admin = "# Device\tMountpoint\tFStype\n/dev/ada0p2\t/\tufs\trw\t1\t1\n"
        first = merge_block(admin, "a:/usr/src /usr/src nfs ro 0 0\n")
        assert first.startswith(admin)
        assert f"{BEGIN}\na:/usr/src /usr/src nfs ro 0 0\n{END}\n" in first
        second = merge_block(first, "b:/usr/src /usr/src nfs ro 0 0\n")
        assert "a:/usr/src" not in second and "b:/usr/src" in second
        assert second.startswith(admin)
        assert merge_block(second, "") == admin
        assert merge_block(second, "b:/usr/src /usr/src nfs ro 0 0\n") == second

    def test_empty_file(self) -> None:
        assert merge_block("", "x\n") == f"{BEGIN}\nx\n{END}\n"
        assert merge_block("", "") == ""


class TestJobs:
    @pytest.mark.parametrize(
        ("output", "state"),
        [
            ("exit 0\n", JobState("finished", 0)),
            ("exit 2", JobState("finished", 2)),
            ("running\n", JobState("running")),
            ("gone\n", JobState("gone")),
            ("exit \n", JobState("finished", 255)),
            ("", JobState("gone")),
        ],
    )
    def test_parse(self, output: str, state: JobState) -> None:
        assert parse_job_state(output) == state


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.t += seconds
        return False


class TestSoak:
    def test_schedule_checks_start_and_end_at_least_three_times(self) -> None:
        assert soak_schedule(600) == [0, 300, 600]

    def test_healthy_all_along(self) -> None:
        clock, seen = FakeClock(), []
        assert soak(lambda: seen.append(clock.now()) or [], seconds=600, clock=clock) == []
        assert seen == [0, 300, 600]

    def test_momentary_health_is_not_enough(self) -> None:
        clock = FakeClock()
        answers = iter([[], ["sshd is not running"], []])
        problems = soak(lambda: next(answers), seconds=60, clock=clock)
        assert problems == ["sshd is not running (after 30s of a 60s soak)"]


HOSTILE = ["GENERIC; rm -rf /", "$(id)", "`id`", "a\nb", "' \"", "--help"]


class TestScriptsQuoteEverything:
    @pytest.mark.parametrize("value", HOSTILE)
    def test_values_are_positional_parameters(self, value: str) -> None:
        for argv in (
            scripts.be_install_command(B, value, value, value, value),
            scripts.inplace_kernel_command(B, value),
            scripts.inplace_world_command(B, value),
            scripts.build_command(B, 2, (value, "GENERIC")),
        ):
            line = quote(argv)
            # The shell sees the same words back: nothing was parsed as syntax.
            assert shlex.split(line) == argv
            if any(c.isalpha() for c in value):
                assert value not in argv[argv.index("-c") + 1]

    def test_wrapper_records_exit_status_even_on_failure(self, tmp_path: object) -> None:
        job = scripts.Job("t", "/nonexistent.pid", "/dev/null", f"{tmp_path}/exit")
        argv = scripts.detached(job, 'echo "$1"; false; echo never', "hello $(id)")
        inner = argv[argv.index("sh") :]
        out = subprocess.run(inner, capture_output=True, text=True, check=False)
        assert out.stdout == "hello $(id)\n"
        assert Path(f"{tmp_path}/exit").read_text().strip() == "1"


class TestJobStateScript:
    """The state script itself, run by this machine's sh and procps pgrep."""

    def _state(self, job: scripts.Job) -> JobState:
        out = subprocess.run(scripts.job_state_command(job), capture_output=True, text=True)
        return parse_job_state(out.stdout)

    def test_finished_running_and_gone(self, tmp_path: Path) -> None:
        job = scripts.Job("t", str(tmp_path / "pid"), str(tmp_path / "log"), str(tmp_path / "exit"))
        assert self._state(job) == JobState("gone")
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            Path(job.pidfile).write_text(f"{sleeper.pid}\n")
            assert self._state(job) == JobState("running")
        finally:
            sleeper.kill()
            sleeper.wait()
        assert self._state(job) == JobState("gone")
        Path(job.exitfile).write_text("0\n")
        assert self._state(job) == JobState("finished", 0)

    def test_wrapper_writes_the_exit_file_whole(self, tmp_path: Path) -> None:
        job = scripts.Job("t", str(tmp_path / "pid"), "/dev/null", str(tmp_path / "exit"))
        argv = scripts.detached(job, "exit 7")
        subprocess.run(argv[argv.index("sh") :], check=False)
        assert Path(job.exitfile).read_text() == "7\n"
        assert not Path(job.exitfile + ".new").exists()


class TestPoll:
    """One round trip per poll: state line, then the log's new bytes, read by this machine's sh."""

    def test_state_and_log_increments(self, tmp_path: Path) -> None:
        job = scripts.Job("t", str(tmp_path / "pid"), str(tmp_path / "log"), str(tmp_path / "exit"))
        seen: list[str] = []
        follower = LogFollower(job, seen.append)

        class Local:
            def run(self, argv: list[str], **_: object) -> Result:
                out = subprocess.run(argv, capture_output=True, text=True)
                return Result(out.returncode, out.stdout, out.stderr)

        assert follower.poll(Local()) == JobState("gone")  # no log yet, no job
        Path(job.log).write_text(">>> World build started\n>>> stage 1")
        assert follower.poll(Local()) == JobState("gone")
        assert seen == [">>> World build started"]
        with Path(job.log).open("a") as log:
            log.write(".1: shims\ndone\n")
        Path(job.exitfile).write_text("0\n")
        assert follower.poll(Local()) == JobState("finished", 0)
        assert seen == [">>> World build started", ">>> stage 1.1: shims", "done"]
        assert follower.poll(Local()) == JobState("finished", 0)
        assert len(seen) == 3
