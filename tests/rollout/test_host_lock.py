"""One reconciler acting on a host at a time, whatever clone it runs from (issue 12 part 9).

Two clones of one config repo, whose origin is served by git-daemon(1) on the
loopback (so neither clone's repo lock sees the other: the origin is not a
directory on this machine), run ``reconciler apply`` at once against the
simulated fleet. The lock on each host (lockf(1) on /var/run/reconciler.lock)
lets exactly one of them carry out each step; the other reports "another
reconciler (pid P on MACHINE ...) is working on HOST", exits 75, and the
ledger has no failure and no quarantine.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from reconciler.gitutil import git
from tests.rollout.conftest import ROOT, Lab


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    # git-daemon itself, not `git daemon`: git would fork it as a child, and
    # killing git at the end would leave the daemon running.
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    daemon = subprocess.Popen(
        [f"{exec_path}/git-daemon", "--export-all", "--enable=receive-pack", "--reuseaddr",
         f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return daemon, f"git://127.0.0.1:{port}"
        time.sleep(0.1)
    daemon.kill()
    raise AssertionError("git daemon did not listen")


def test_two_clones_apply_at_once_one_works_the_other_waits(small_lab: Lab, tmp_path: Path) -> None:
    lab = small_lab
    daemon, url = _serve(lab.repo.parent)
    try:
        clones = []
        for name in ("operator", "daemon"):
            clone = tmp_path / name
            git(tmp_path, "clone", "-q", f"{url}/{lab.repo.name}", str(clone))
            clones.append(clone)
        lab.fleet.set_fault("builder", "slow", 10)  # the build lasts long enough to collide
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reconciler",
                    "apply",
                    str(clone),
                    "--yes",
                    "--ssh-key",
                    str(lab.fleet.client_key),
                    "--host",
                    "tester",  # the test host is enough (and faster)
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            for clone in clones
        ]
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        daemon.kill()
        daemon.wait(timeout=10)
    codes = sorted(p.returncode for p in procs)
    both = "\n".join(o + e for o, e in outputs)
    assert codes == [0, 75], both[-6000:]
    loser = outputs[[p.returncode for p in procs].index(75)]
    said = re.search(
        r"another reconciler \(pid (\d+) on (\S+) \(apply from (\S+), since [0-9TZ:-]+\)\) "
        r"is working on (\w+)",
        loser[1],
    )
    assert said, loser[1][-3000:]
    winner = procs[[p.returncode for p in procs].index(0)]
    assert said.group(1) == str(winner.pid)
    assert said.group(2) == socket.gethostname()
    assert said.group(3) == str(clones[procs.index(winner)])
    assert lab.fleet.count("builder", "buildworld") == 1
    assert lab.counts("installworld") == {"builder": 0, "tester": 1}
    subjects = lab.subjects()
    outcomes = [e.outcome for e in lab.entries()]
    assert "failure" not in outcomes and "quarantined" not in outcomes, subjects
    assert "halted" not in outcomes and "interrupted" not in outcomes, subjects
    assert not lab.fleet.ssh("builder", "pgrep -f 'lockf -k'").stdout.strip()  # released
