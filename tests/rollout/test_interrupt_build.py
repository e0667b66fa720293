"""Ctrl-C (or the daemon's SIGTERM) during a build does not wait for the build (issue 15 #1).

The build runs detached under daemon(8) on the build host: the reconciler
stops following it, exits 130 and says how to resume; the next run
re-attaches to the same build and builds nothing twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.rollout.conftest import ROOT, Lab, read_until


def test_ctrl_c_during_the_build_leaves_it_running_and_a_rerun_reattaches(small_lab: Lab) -> None:
    lab = small_lab
    lab.fleet.set_fault("builder", "slow", 40)  # a build of ~25 s
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *lab.argv("--buildset", "lab")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    read_until(proc, "lab/builder: build: ", timeout=120)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, output
    assert time.monotonic() - started < 15, "waited for the build"
    running = lab.fleet.ssh("builder", "pgrep -F /var/run/reconciler-build.pid")
    assert running.returncode == 0, "the build did not go on"
    assert not [s for s in lab.subjects() if s.startswith("tester: installing")]
    lab.fleet.clear_fault("builder", "slow")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "re-attaching to the running build" in done.stdout or "await-build" in done.stdout
    assert lab.fleet.count("builder", "buildworld") == 1
