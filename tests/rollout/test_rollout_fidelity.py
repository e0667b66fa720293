"""Where FreeBSD is less kind than the first simulator was: detached jobs and reboots.

- daemon(8) creates its pidfile empty before it forks (usr.sbin/daemon/daemon.c);
  pgrep -F on it exits 3 (bin/pkill/pkill.c takepid): a starting job, not a gone one.
- A previous run's exit file must be gone before the next job starts, or the
  first poll reads it as this job's end.
- shutdown -r returns while the old system still answers (sbin/shutdown/shutdown.c):
  reboot detection must not take it for the new boot.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.clock import SystemClock
from reconciler.config.model import Host
from reconciler.facts.connect import connect
from reconciler.rollout import jobs, scripts
from reconciler.rollout.jobs import JobState, parse_job_state
from reconciler.rollout.reboot import boottime, parse_boottime, reboot_and_wait, rebooted
from reconciler.sim.fleet import SimFleet
from reconciler.transport.ssh import Connection, Result
from tests.conftest import FAST, fresh_subnet, ssh_ok


class Local:
    """A Runner on this machine's sh (the scripts are POSIX sh)."""

    def run(self, argv: list[str], **_: object) -> Result:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        return Result(out.returncode, out.stdout, out.stderr)


def _job(tmp_path: Path) -> scripts.Job:
    return scripts.Job("t", str(tmp_path / "pid"), str(tmp_path / "log"), str(tmp_path / "x/exit"))


def test_an_empty_pidfile_is_a_starting_job(tmp_path: Path) -> None:
    job = _job(tmp_path)
    Path(job.pidfile).write_text("")
    out = Local().run(scripts.job_state_command(job))
    assert parse_job_state(out.stdout) == JobState("running")
    Path(job.pidfile).unlink()
    assert parse_job_state(Local().run(scripts.job_state_command(job)).stdout) == JobState("gone")


def test_start_removes_the_previous_exit_file_before_the_job_runs(tmp_path: Path) -> None:
    job = _job(tmp_path)
    Path(job.exitfile).parent.mkdir(parents=True)
    Path(job.exitfile).write_text("0\n")  # the earlier attempt's
    jobs.start(Local(), job, ["true"])  # a job that has not written its status yet
    assert not Path(job.exitfile).exists()
    assert jobs.job_state(Local(), job) == JobState("gone")


@pytest.mark.parametrize(
    ("before", "now", "issued_at", "expected"),
    [
        ("{ sec = 100, usec = 5 } Thu", "{ sec = 100, usec = 5 } Thu", None, False),
        ("{ sec = 100, usec = 5 } Thu", "{ sec = 160, usec = 7 } Thu", None, True),
        ("", "{ sec = 100, usec = 5 } Thu", 150, False),  # the old system, still up
        ("", "{ sec = 160, usec = 5 } Thu", 150, True),
        ("", "{ sec = 100, usec = 5 } Thu", None, False),  # nothing to compare: never
        ("{ sec = 100, usec = 5 }", "", 150, False),
    ],
)
def test_rebooted(before: str, now: str, issued_at: int | None, expected: bool) -> None:
    assert rebooted(before, now, issued_at=issued_at) is expected


def test_parse_boottime() -> None:
    assert parse_boottime("{ sec = 1733241600, usec = 81234 } Tue Dec  3 16:00:00 2024") == (
        1733241600,
        81234,
    )
    assert parse_boottime("garbage") is None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("fidelity") / "fleet"
    fleet = SimFleet.up(directory, hosts=1, subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


def _conn(fleet: SimFleet) -> Connection:
    host = Host("host1", "set", fleet.address("host1"), "GENERIC", port=fleet.port("host1"))
    return connect(
        host,
        known_hosts=fleet.known_hosts.read_text(),
        key_path=fleet.client_key,
        retries=1,
    )


def test_freebsd_pgrep_on_daemons_pidfile(fleet: SimFleet) -> None:
    done = fleet.ssh("host1", ": > /var/run/e.pid; pgrep -F /var/run/e.pid")
    assert (done.returncode, done.stderr) == (3, "pgrep: Pidfile `/var/run/e.pid' is empty\n")
    done = fleet.ssh("host1", "pgrep -F /var/run/nope.pid")
    assert done.returncode == 3
    assert done.stderr == (
        "pgrep: Cannot open pidfile `/var/run/nope.pid': No such file or directory\n"
    )
    # daemon(8)'s pidfile is locked while its supervisor lives: pgrep -L sees that.
    ssh_ok(fleet, "host1", "daemon -f -p /var/run/d.pid sleep 5")
    out = ssh_ok(fleet, "host1", "pgrep -L -F /var/run/d.pid")
    assert out.strip().isdigit()
    done = fleet.ssh("host1", "echo 4242 > /var/run/stale.pid; pgrep -L -F /var/run/stale.pid")
    assert (done.returncode, done.stderr) == (3, "pgrep: File '/var/run/stale.pid' can be locked\n")


def test_job_state_on_a_freebsd_host_with_an_empty_pidfile(fleet: SimFleet) -> None:
    job = scripts.Job("t", "/var/run/t.pid", "/var/log/t.log", "/var/db/t.exit")
    with _conn(fleet) as conn:
        conn.run(["sh", "-c", ": > /var/run/t.pid"], timeout=30)
        assert jobs.job_state(conn, job) == JobState("running")
        conn.run(["rm", "-f", "/var/run/t.pid"], timeout=30)
        assert jobs.job_state(conn, job) == JobState("gone")


def test_reboot_detection_is_not_fooled_by_the_old_system(fleet: SimFleet) -> None:
    host = Host("host1", "set", fleet.address("host1"), "GENERIC", port=fleet.port("host1"))
    with _conn(fleet) as conn:
        old = boottime(conn)
        booted_before = fleet.state("host1")["booted_at"]
        # No recorded boot time (the caller could not read one): the old system,
        # answering for a while after shutdown returned, must not count as back.
        assert reboot_and_wait(conn, host, timeout=30, clock=SystemClock(), poll=0.2, before="")
        assert fleet.state("host1")["booted_at"] != booted_before
        assert boottime(conn) != old
        started = time.monotonic()
        assert reboot_and_wait(conn, host, timeout=30, clock=SystemClock(), poll=0.2)
        assert time.monotonic() - started >= fleet.timings.shutdown_seconds
