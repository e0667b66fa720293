"""Rollouts against the simulated fleet: host state and ledger commits asserted."""

from __future__ import annotations

from reconciler.config.buildid import build_id, short
from reconciler.config.load import load_config
from reconciler.rollout.scripts import be_name
from tests.rollout.conftest import Lab, wait_for

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
