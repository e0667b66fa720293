"""The simulated lockf(1) behaves as usr.bin/lockf/lockf.c does, through real SSH."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-lockf") / "fleet"
    fleet = SimFleet.up(directory, hosts=1, subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


def test_lockf_runs_the_command_and_exits_with_its_status(fleet: SimFleet) -> None:
    done = fleet.ssh("host1", "lockf /var/run/t1.lock sh -c 'echo in; exit 7'; echo status=$?")
    assert done.stdout.split() == ["in", "status=7"]
    kept = fleet.ssh("host1", "test -e /var/run/t1.lock; echo $?")
    assert kept.stdout.strip() == "1"  # removed without -k
    fleet.ssh("host1", "lockf -k /var/run/t2.lock true")
    assert fleet.ssh("host1", "test -e /var/run/t2.lock; echo $?").stdout.strip() == "0"  # -k


def test_a_held_lock_times_out_with_ex_tempfail(fleet: SimFleet) -> None:
    holder = (
        "lockf -k /var/run/t3.lock sleep 3 >/dev/null 2>&1 & sleep 0.7; "
        "lockf -k -t 0 /var/run/t3.lock echo ran; echo status=$?; "
        "lockf -k -s -t 0 /var/run/t3.lock echo ran; echo silent=$?; "
        "start=$(date +%s); lockf -k -t 1 /var/run/t3.lock echo ran; echo waited=$?; "
        "echo took=$(( $(date +%s) - start ))"
    )
    out = fleet.ssh("host1", holder)
    assert "ran" not in out.stdout  # a command is not run when the lock times out
    assert "lockf: /var/run/t3.lock: already locked" in out.stderr
    assert out.stderr.count("already locked") == 2  # -s says nothing
    lines = dict(line.split("=") for line in out.stdout.split())
    assert (lines["status"], lines["silent"], lines["waited"]) == ("75", "75", "75")
    assert 1 <= int(lines["took"]) <= 2
    later = fleet.ssh("host1", "sleep 2.5; lockf -k -t 0 /var/run/t3.lock echo free")
    assert later.stdout.strip() == "free"  # released when the holder's command ended


def test_the_lock_goes_with_the_lockf_process(fleet: SimFleet) -> None:
    # The child does not hold the lock: kill lockf itself and the lock is free.
    started = fleet.ssh(
        "host1",
        "lockf -k /var/run/t4.lock sleep 30 >/dev/null 2>&1 & echo $!",
    )
    pid = started.stdout.strip()
    time.sleep(0.7)
    assert fleet.ssh("host1", "lockf -k -t 0 /var/run/t4.lock true; echo $?").stdout.strip() == "75"
    fleet.ssh("host1", f"kill -9 {pid}")
    time.sleep(0.3)
    assert fleet.ssh("host1", "lockf -k -t 0 /var/run/t4.lock true; echo $?").stdout.strip() == "0"
    fleet.ssh("host1", "pkill -f 'sleep 30' || true")
