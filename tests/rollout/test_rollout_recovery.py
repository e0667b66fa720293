"""Rollouts that meet trouble and resume: a kernel that does not boot, SIGKILLs, in-place order.

Split from test_rollout_sim.py (same helpers) so two test workers share the
minutes these take.
"""

from __future__ import annotations

import signal

from reconciler.config.buildid import short
from reconciler.rollout.scripts import be_name
from reconciler.sim import upstream
from tests.rollout.conftest import Lab, read_until, wait_for
from tests.rollout.test_rollout_sim import _assert_runs, _build, _outcomes, _running


def test_kernel_that_does_not_boot_falls_back_and_halts_production(lab: Lab) -> None:
    lab.edit(
        "buildsets/lab/buildset.yaml", r"batch: 2", "batch: 1", "One production host at a time"
    )
    lab.fleet.set_fault("web1", "kernel-panic")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 1
    build = _build(lab)
    _assert_runs(lab, build, ("tester",))
    # web1 came back on its old BE by itself (the activation was one-shot).
    assert lab.booted_be("web1") == "default"
    assert lab.uname("web1")[0] == "WEB"
    failed = _outcomes(lab, "web1", "rolled-back")
    assert failed and "did not boot" in failed[0]
    # max_failures 0: the batches after web1's are not started.
    assert lab.fleet.count("web2", "installkernel") == 0
    assert lab.fleet.count("builder", "installkernel") == 0
    halted = _outcomes(lab, outcome="halted")
    assert halted and "more than max_failures=0" in halted[-1]


def test_sigkill_during_build_install_and_reboot_then_resume(small_lab: Lab) -> None:
    lab = small_lab
    # 1. killed while the build runs: the build goes on, the next run re-attaches.
    lab.fleet.set_fault("builder", "slow", 30)  # the build outlives the reconciler
    run = lab.start_apply("--buildset", "lab")
    wait_for(lambda: _running(lab, "builder", "/var/run/reconciler-build.pid"))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    resumed = lab.start_apply("--buildset", "lab", "-v")  # -v: what each step says
    output = read_until(resumed, "re-attaching to the running build")
    lab.fleet.clear_fault("builder", "slow")
    output += resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, output
    assert lab.fleet.count("builder", "buildworld") == 1
    assert all(n == 1 for n in lab.counts("installworld").values())

    # 2. killed during the test host's install.
    lab.edit("buildsets/lab/src.conf", r"\Z", "WITHOUT_GAMES=yes\n", "Drop games")
    run = lab.start_apply("--buildset", "lab")
    lab.fleet.set_fault("tester", "slow", 5)  # the install outlives the reconciler
    wait_for(lambda: _running(lab, "tester", "/var/run/reconciler-install.pid"))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    resumed = lab.start_apply("--buildset", "lab")
    activated = f"tester: {be_name(_build(lab))} activated"
    wait_for(
        lambda: resumed.poll() is not None or any(s.startswith(activated) for s in lab.subjects())
    )
    lab.fleet.clear_fault("tester", "slow")
    output = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, output
    assert lab.fleet.count("builder", "buildworld") == 2
    assert all(n == 2 for n in lab.counts("installworld").values()), lab.counts("installworld")

    # 3. killed while waiting for the test host's reboot.
    lab.edit("buildsets/lab/src.conf", r"\Z", "WITHOUT_FINGER=yes\n", "Drop finger")
    run = lab.start_apply("--buildset", "lab")
    wait_for(lambda: any(s.startswith("tester: rebooting") for s in lab.subjects()[-3:]))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(n == 3 for n in lab.counts("installworld").values()), lab.counts("installworld")
    _assert_runs(lab, _build(lab))
    # The ledger tells the whole story: the test stage passed before any production install.
    subjects = lab.subjects()
    last_build = short(_build(lab))
    passed = next(i for i, s in enumerate(subjects) if f"build {last_build} passed the test" in s)
    first_prod = next(
        i for i, s in enumerate(subjects) if s.startswith("builder: installing") and last_build in s
    )
    assert passed < first_prod


def test_newest_revision_reaches_both_build_sets_in_place_in_handbook_order(lab: Lab) -> None:
    newest = upstream.commits()[-1]
    # source.revision only (ports.revision follows it in fleet.yaml)
    lab.edit(
        "fleet.yaml", r"(stable/14\n  revision:\s*)[0-9a-f]{40}", rf"\g<1>{newest}", "Track newest"
    )
    done = lab.apply()
    assert done.returncode == 0, done.stdout + done.stderr
    for host in lab.fleet.hosts:
        assert f"-{newest[:12]}" in lab.uname(host)[1], host
    src_head = lab.fleet.ssh("builder", "git -C /usr/src rev-parse HEAD").stdout.strip()
    assert src_head == newest
    # Each build set built once, on its own build host.
    assert lab.fleet.count("builder", "buildworld") == 1
    assert lab.fleet.count("db1", "buildworld") == 1
    # db installs in place, in the handbook's order: kernel, reboot, world, reboot.
    build = _build(lab, "db")
    for host in ("db1", "db2"):
        assert lab.uname(host)[0] == "DB"
        assert f"build={build}" in (lab.fleet.read_file(host, "/var/db/reconciler/installed") or "")
        assert lab.fleet.count(host, "reboot") == 2
    phases = [s.split(": ", 1)[1] for s in _outcomes(lab, "db2")]
    kernel = next(i for i, s in enumerate(phases) if "kernel first" in s)
    booted = next(i for i, s in enumerate(phases) if s.startswith("booted kernel DB"))
    world = next(i for i, s in enumerate(phases) if "world installed" in s)
    assert kernel < booted < world
