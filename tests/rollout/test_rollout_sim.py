"""Rollouts against the simulated fleet: host state and ledger commits asserted."""

from __future__ import annotations

import signal

from reconciler.config.buildid import build_id, short
from reconciler.config.load import load_config
from reconciler.rollout.scripts import be_name
from reconciler.sim import upstream
from tests.rollout.conftest import Lab, read_until, wait_for

LAB = ("builder", "tester", "web1", "web2")
KERNCONF = {"builder": "BUILDER", "tester": "GENERIC", "web1": "WEB", "web2": "WEB"}


def _build(lab: Lab, buildset: str = "lab") -> str:
    return build_id(load_config(lab.repo, "HEAD"), buildset)


def _outcomes(lab: Lab, host: str | None = None, outcome: str | None = None) -> list[str]:
    return [
        e.subject
        for e in lab.entries()
        if (host is None or e.host == host) and (outcome is None or e.outcome == outcome)
    ]


def _running(lab: Lab, host: str, pidfile: str) -> bool:
    """A detached job of the reconciler's runs on the host (daemon(8)'s pidfile is live)."""
    return lab.fleet.ssh(host, f"pgrep -F {pidfile}").returncode == 0


def _assert_runs(lab: Lab, build: str, hosts: tuple[str, ...] | None = None) -> None:
    revision = load_config(lab.repo, "HEAD").source.short
    for host in hosts or tuple(lab.counts("boot")):
        ident, version = lab.uname(host)
        assert ident == KERNCONF[host], host
        assert f"-{revision}" in version, (host, version)
        assert lab.booted_be(host) == be_name(build), host
        marker = lab.fleet.read_file(host, "/var/db/reconciler/installed") or ""
        assert f"build={build}" in marker, host


def test_full_rollout_converges_and_a_second_apply_does_nothing(lab: Lab) -> None:
    build = _build(lab)
    first = lab.start_apply("--buildset", "lab")
    # Two applies at once: the second is told another reconciler runs, and changes nothing.
    wait_for(lambda: any("started" in s for s in lab.subjects()))
    second = lab.apply("--buildset", "lab")
    assert second.returncode == 1
    assert "another reconciler is running" in second.stderr
    output = first.communicate(timeout=240)[0]
    assert first.returncode == 0, output
    _assert_runs(lab, build)
    # The activation was made permanent after verification.
    for host in LAB:
        flags = dict(
            line.split("\t")[:2]
            for line in lab.fleet.ssh(host, "bectl list -H").stdout.splitlines()
        )
        assert flags[be_name(build)] == "NR", (host, flags)
    # Built once, on the build host only; each host installed and rebooted once.
    assert lab.counts("buildworld") == {"builder": 1, "tester": 0, "web1": 0, "web2": 0}
    assert all(n == 1 for n in lab.counts("installworld").values())
    reboots = lab.counts("reboot")
    assert all(n == 1 for n in reboots.values()), reboots
    # make.conf: the build host lists every kernel of the set, its own first.
    make_conf = lab.fleet.read_file("builder", "/etc/make.conf") or ""
    assert "KERNCONF=BUILDER GENERIC WEB" in make_conf
    assert "KERNCONF=WEB\n" in (lab.fleet.read_file("web1", "/etc/make.conf") or "")
    # The ledger: one commit per outcome, in order, with trailers.
    entries = lab.entries()
    successes = [
        e for e in entries if e.outcome == "success" and e.host in LAB and e.step == "confirm"
    ]
    assert sorted(e.host for e in successes) == sorted(LAB)
    subjects = [e.subject for e in entries]
    assert len(subjects) == len(set(subjects)), subjects
    order = [
        next(i for i, s in enumerate(subjects) if key in s)
        for key in (
            f"build {short(build)} finished",
            "tester: installed",
            "passed the test stage",
            "web1: installing",
            "builder: installed",
            "converged",
        )
    ]
    assert order == sorted(order), subjects
    assert entries[-1].trailers["outcome"] == "success"
    assert entries[-1].trailers["build"] == build
    # Nothing left to do: no build, no reboot, no commit.
    head = lab.ledger.head()
    again = lab.apply("--buildset", "lab")
    assert again.returncode == 0, again.stdout + again.stderr
    assert lab.ledger.head() == head
    assert lab.counts("reboot") == reboots
    assert lab.fleet.count("builder", "buildworld") == 1
    assert "in sync" in again.stdout


def test_config_only_change_rebuild_and_return_to_a_previous_build(small_lab: Lab) -> None:
    lab = small_lab
    first = _build(lab)
    assert lab.apply("--buildset", "lab").returncode == 0
    reboots = lab.counts("reboot")
    # A make.conf change that does not touch the build: files rewritten, no build, no reboot.
    lab.edit(
        "buildsets/lab/buildset.yaml",
        r"wrkdirprefix: /var/ports",
        "wrkdirprefix: /var/tmp/ports",
        "Build ports in /var/tmp/ports",
    )
    assert _build(lab) == first
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout + done.stderr
    for host in lab.counts("boot"):
        assert "WRKDIRPREFIX=/var/tmp/ports" in (lab.fleet.read_file(host, "/etc/make.conf") or "")
    assert lab.counts("reboot") == reboots
    assert lab.fleet.count("builder", "buildworld") == 1
    assert len(_outcomes(lab, outcome="healed")) == len(lab.counts("boot"))
    # A src.conf change changes the build: one build, every host reinstalled.
    lab.edit("buildsets/lab/src.conf", r"\Z", "WITHOUT_GAMES=yes\n", "Drop games")
    second = _build(lab)
    assert second != first
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.fleet.count("builder", "buildworld") == 2
    assert all(n == 2 for n in lab.counts("installworld").values())
    _assert_runs(lab, second)
    assert "WITHOUT_GAMES=yes" in (lab.fleet.read_file("tester", "/etc/src.conf") or "")
    # Going back reuses the first build's objects (no buildworld) and its boot environments,
    # still as each host confirmed them: an instant revert costs a reboot, not an install.
    lab.edit("buildsets/lab/src.conf", r"WITHOUT_GAMES=yes\n", "", "Bring games back")
    assert _build(lab) == first
    reboots = lab.counts("reboot")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.fleet.count("builder", "buildworld") == 2
    assert all(n == 2 for n in lab.counts("installworld").values()), lab.counts("installworld")
    assert lab.counts("reboot") == {h: n + 1 for h, n in reboots.items()}
    assert "instant revert: rc-" in done.stdout
    _assert_runs(lab, first)


def test_build_failure_installs_nothing_and_an_etcupdate_conflict_fails_the_host(
    small_lab: Lab,
) -> None:
    lab = small_lab
    lab.fleet.set_fault("builder", "build-fails")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 1
    assert "not every host converged" in done.stderr
    assert all(n == 0 for n in lab.counts("installkernel").values())
    failures = _outcomes(lab, outcome="failure")
    assert any("build" in s and "failed on builder" in s for s in failures), failures
    assert any("halted at the build stage" in s for s in _outcomes(lab, outcome="halted"))

    # The build works again; etcupdate leaves a conflict in the test host's new BE.
    lab.fleet.clear_fault("builder", "build-fails")
    lab.fleet.set_fault("tester", "etcupdate-conflict")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 1
    failed = _outcomes(lab, "tester", "failure")
    assert failed and "etcupdate conflicts in /etc/rc.conf" in failed[-1], failed
    # beinstall.sh's promise: the running system untouched, the half-made BE gone.
    assert lab.booted_be("tester") == "default"
    assert be_name(_build(lab)) not in lab.fleet.ssh("tester", "bectl list -H").stdout
    assert lab.fleet.count("builder", "installkernel") == 0


def test_failing_health_check_on_the_test_host_rolls_it_back(small_lab: Lab) -> None:
    lab = small_lab
    lab.fleet.set_fault("tester", "health-fails")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 1
    assert lab.booted_be("tester") == "default"
    assert lab.fleet.count("tester", "installworld") == 1
    assert lab.fleet.count("builder", "installkernel") == 0
    rolled = _outcomes(lab, "tester", "rolled-back")
    assert rolled and "health check failed" in rolled[0] and "rolled back to default" in rolled[0]
    assert any("test stage failed" in s for s in _outcomes(lab, outcome="halted"))
    assert not any("passed the test stage" in s for s in lab.subjects())


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
