"""Maintenance windows on the simulated fleet: outside one the build runs and no host installs;
apply exits 75 saying what waits and until when; SIGKILL while gated resumes correctly.

The windows are written relative to the real wall clock (``reconciler apply``
runs as a process of its own, with the system's clock): one that opens three
days from now is closed, one that spans the whole week is open.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from tests.rollout.conftest import Lab, read_until

LAB = "buildsets/lab/buildset.yaml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_outside_the_window_builds_but_installs_nothing_and_a_kill_resumes(small_lab: Lab) -> None:
    lab = small_lab
    later = DAYS[(datetime.now(UTC) + timedelta(days=3)).weekday()]
    lab.edit(
        LAB,
        r"^  soak: 1$",
        f'  soak: 1\n  windows:\n    - {{days: [{later}], start: "00:00", duration: 1h, '
        "timezone: UTC}",
        "A maintenance window three days from now",
    )
    tester_be = lab.booted_be("tester")
    lab.fleet.set_fault("builder", "slow", 20)
    proc = lab.start_apply("--buildset", "lab")
    printed = read_until(proc, "lab/builder: build: ", timeout=120)
    assert "waiting for the window that opens" in printed  # the plan said it first
    proc.send_signal(signal.SIGKILL)  # while the hosts are gated and the build runs
    proc.wait(timeout=30)
    lab.fleet.clear_fault("builder", "slow")

    again = lab.apply("--buildset", "lab")
    assert again.returncode == 75, again.stdout[-3000:] + again.stderr[-2000:]
    assert f"tester waits: waiting for the window that opens {later.title()} 00:00 UTC (in " in (
        again.stderr
    )
    assert lab.fleet.count("builder", "buildworld") == 1  # re-attached, not built twice
    assert lab.counts("installworld") == {"builder": 0, "tester": 0}
    assert lab.booted_be("tester") == tester_be
    assert not [e for e in lab.entries() if e.outcome in ("failure", "halted", "quarantined")]

    lab.edit(
        LAB,
        r"^    - \{days: .*$",
        f'    - {{days: [{", ".join(DAYS)}], start: "00:00", duration: 168h, timezone: UTC}}',
        "The window is open all week",
    )
    done = lab.apply("--host", "tester")  # the test host is enough (and faster)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert lab.fleet.count("builder", "buildworld") == 1
    assert lab.counts("installworld")["tester"] == 1
    assert lab.booted_be("tester").startswith("rc-")
    assert not [e for e in lab.entries() if e.outcome in ("failure", "halted", "quarantined")]
