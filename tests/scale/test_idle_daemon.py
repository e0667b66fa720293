"""An idle daemon keeps one SSH connection per host across cycles (counted by the hosts' sshd).

The fleet is adopted and brought in sync first (tests/scale/insync.py), so
every cycle of the daemon is a drift check that changes nothing. Each
simulated sshd logs every login it accepts (``SimFleet.accepts``): after the
first cycle the count stays put, a reboot costs exactly one new login, and
SIGTERM closes the connections.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.sim.fleet import SimFleet
from tests.scale.insync import ROOT, in_sync_fleet, reconciler


class Daemon:
    def __init__(self, tmp: Path, fleet: SimFleet, repo: Path, **settings: object) -> None:
        self.bare = tmp / "config.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(self.bare)], check=True)
        values = {
            "repo": str(self.bare), "work_dir": str(tmp / "work"), "branch": "main",
            "ssh_key": str(fleet.client_key), "poll_interval": 1, "log_format": "json",
            **settings,
        }  # fmt: skip
        self.settings = tmp / "reconciler.toml"
        self.settings.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
        self.log = tmp / "daemon.log"
        self.proc = subprocess.Popen(
            # -v: an idle cycle's lines are debug (they would bury what happened at info)
            [sys.executable, "-m", "reconciler", "-v", "run", "--config", str(self.settings)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def events(self) -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def cycles(self) -> int:
        """Finished cycles: each ends with one summary line for the one build set."""
        return sum(1 for e in self.events() if e["event"] == "rollout.summary")

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            assert self.proc.poll() is None, f"daemon exited:\n{self.tail()}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-20:])


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[tuple[SimFleet, Daemon]]:
    fleet, repo = in_sync_fleet(tmp_path, 3)
    daemon: Daemon | None = None
    try:
        reconciler("plan", str(repo), "--detailed-exitcode", "--ssh-key", str(fleet.client_key))
        daemon = Daemon(tmp_path, fleet, repo)
        yield fleet, daemon
    finally:
        if daemon is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)
        fleet.down()


def test_idle_cycles_open_no_connection_and_a_reboot_opens_one(
    idle: tuple[SimFleet, Daemon],
) -> None:
    fleet, daemon = idle
    daemon.wait(lambda: daemon.cycles() >= 2, "two cycles")
    before = {h: fleet.accepts(h) for h in fleet.hosts}
    seen = daemon.cycles()
    daemon.wait(lambda: daemon.cycles() >= seen + 5, "five more cycles")
    assert {h: fleet.accepts(h) for h in fleet.hosts} == before  # five cycles, no new login
    assert all(e["level"] != "warning" for e in daemon.events()), daemon.tail()

    # host3 reboots behind the daemon's back: its connection drops; the next
    # cycle logs in once more, the other hosts keep theirs.
    booted = float(fleet.state("host3")["booted_at"])
    done = fleet.ssh("host3", "shutdown -r now")  # one login of our own (OpenSSH)
    assert done.returncode in (0, 255), done.stderr
    fleet.wait_up("host3", timeout=60, since=booted)
    seen = daemon.cycles()
    daemon.wait(lambda: daemon.cycles() >= seen + 4, "four cycles after the reboot")
    after = {h: fleet.accepts(h) for h in fleet.hosts}
    assert after == {**before, "host3": before["host3"] + 2}

    # SIGTERM: the daemon stops at a safe point and closes its connections.
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(60) == 0, daemon.tail()
    assert any(e["event"] == "daemon.stop" for e in daemon.events())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _open_sessions(fleet) > 0:
        time.sleep(0.1)
    assert _open_sessions(fleet) == 0


def _open_sessions(fleet: SimFleet) -> int:
    """Established TCP connections to the hosts' sshd (port 22 on their addresses)."""
    addresses = {fleet.address(h) for h in fleet.hosts}
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        address, _, port = local.partition(":")
        ip = ".".join(str(b) for b in bytes.fromhex(address)[::-1])
        if state == "01" and int(port, 16) == 22 and ip in addresses:
            count += 1
    return count
