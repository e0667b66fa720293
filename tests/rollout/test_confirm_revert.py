"""Confirm or revert across the reboot, and the smoke test before it (issue 12, parts 1-2).

On the simulated fleet (real sshd per host; the boot really runs the new
world's rc.d scripts, so the watchdog the reconciler puts into the new BE
really runs there): a normal rollout confirms over a new SSH connection and
leaves no watchdog behind; a world whose network does not come up reverts
by itself within confirm_timeout and the ledger says so; a world whose
sshd_config is broken is caught in a jail before any reboot; a reconciler
killed while the host waits for its confirmation resumes and confirms once
(and that, with the production host's plain rollout after it, is the
normal case: confirmed, permanent, no watchdog left).
Each test asserts the hosts and the ledger.
"""

from __future__ import annotations

import signal

from reconciler import remote
from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.remote import be_name
from tests.rollout.conftest import Lab, wait_for

TIMEOUT = 5  # confirm_timeout of the revert test (the schema's minimum): seconds
LAB = "buildsets/lab/buildset.yaml"


def _short_confirm(lab: Lab, timeout: int = TIMEOUT, health: str = "") -> None:
    lab.edit(
        LAB, r"confirm_timeout: \d+.*$", f"confirm_timeout: {timeout}", f"confirm in {timeout}s"
    )
    if health:
        lab.edit(
            LAB,
            r"^    - service sshd status$",
            f"    - service sshd status\n    - {health}",
            f"health check: {health}",
        )


def _build(lab: Lab) -> str:
    config = load_config(lab.repo, "HEAD")
    return build_id(config, config.buildset("lab"))


def _bectl(lab: Lab, host: str) -> dict[str, str]:
    """BE name -> its Active flags (bectl list -H)."""
    rows = lab.fleet.ssh(host, "bectl list -H").stdout.splitlines()
    return {r.split("\t")[0]: r.split("\t")[1] for r in rows if r.strip()}


def _host_entries(lab: Lab, host: str, outcome: str) -> list[str]:
    return [e.subject for e in lab.entries() if e.host == host and e.outcome == outcome]


def _installed(lab: Lab, host: str) -> list[str]:
    return [s for s in _host_entries(lab, host, "success") if " installed build " in s]


def _watchdog_files(lab: Lab, host: str) -> list[str]:
    found = lab.fleet.ssh(
        host, f"ls {remote.WATCHDOG_SCRIPT} {remote.WATCHDOG_CONF} 2>/dev/null; true"
    )
    return found.stdout.split()


def test_smoke_test_catches_a_broken_sshd_config_then_a_broken_network_reverts_by_itself(
    small_lab: Lab,
) -> None:
    lab = small_lab
    _short_confirm(lab)
    be = be_name(_build(lab))
    # 1. the new world's sshd_config is broken: caught in a jail, before any reboot
    lab.fleet.set_fault("tester", "sshd-config-broken")
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    lab.fleet.clear_fault("tester", "sshd-config-broken")
    assert lab.fleet.count("tester", "reboot") == 0  # never rebooted
    assert lab.fleet.count("tester", "jail") >= 3  # the checks ran in jails
    assert be not in _bectl(lab, "tester")  # the new BE destroyed
    assert lab.booted_be("tester") == "default"
    failed = _host_entries(lab, "tester", "failure")
    assert len(failed) == 1 and failed[0].startswith(f"tester: smoke test in {be} failed: sshd -t:")
    assert "maybe-not" in failed[0] and failed[0].endswith(f"{be} destroyed, no reboot"), failed
    assert lab.fleet.count("builder", "installkernel") == 0  # production untouched
    assert sum(e.outcome == "quarantined" for e in lab.entries()) == 1

    # 2. retried once (same build): this world's network never comes up after its boot;
    # nobody can reach it, so its watchdog re-activates default and reboots by itself
    lab.fleet.set_fault("tester", "net-broken-after-boot")
    done = lab.apply("--buildset", "lab", "--retry-quarantined")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert lab.booted_be("tester") == "default"
    flags = _bectl(lab, "tester")
    assert "R" in flags["default"] and "T" not in "".join(flags.values()), flags
    assert lab.fleet.count("tester", "boot") == 3  # first boot, the new BE, back to default
    reverted = _host_entries(lab, "tester", "rolled-back")
    assert len(reverted) == 1 and reverted[0].startswith(
        f"tester: reverted by the host itself: {be} booted but was not confirmed within {TIMEOUT}s"
    ), reverted
    # within confirm_timeout + boot times of the reboot being recorded
    entries = lab.entries()
    rebooting = next(e for e in entries if e.subject.startswith("tester: rebooting"))
    back = next(e for e in entries if e.subject.startswith("tester: reverted by the host"))
    assert (back.time - rebooting.time).total_seconds() <= TIMEOUT + 10
    # the test stage failed again: production untouched, the build quarantined again
    assert lab.fleet.count("builder", "installkernel") == 0
    assert sum(e.outcome == "quarantined" for e in entries) == 2
    assert not any("passed the test stage" in s for s in lab.subjects())


def test_sigkill_while_the_host_waits_for_its_confirmation_then_resume_and_confirm(
    small_lab: Lab,
) -> None:
    lab = small_lab
    # a slow health check holds the reconciler between the reboot and the confirmation
    _short_confirm(lab, timeout=25, health="sleep 2")
    run = lab.start_apply("--buildset", "lab")
    be = be_name(_build(lab))
    wait_for(lambda: lab.fleet.state("tester").get("booted_be") == be, timeout=180)
    # the watchdog runs on the new boot (started by rc.d at boot, under daemon(8))
    wait_for(
        lambda: lab.fleet.ssh("tester", f"pgrep -F {remote.WATCHDOG_PIDFILE}").returncode == 0,
        timeout=20,
    )
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    assert _installed(lab, "tester") == []
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert lab.fleet.count("tester", "boot") == 2  # no revert: one boot into the new BE
    # tester confirmed by the resumed run, builder by a normal one: each booted and
    # permanent (N R), no one-shot left, the watchdog gone, the boot decided "confirmed"
    for host in ("tester", "builder"):
        assert _bectl(lab, host)[be] == "NR", _bectl(lab, host)
        assert _watchdog_files(lab, host) == []
        by = lab.fleet.ssh(host, f"cat {remote.WATCHDOG_DECIDED}/by").stdout
        assert by == "confirmed\n", by
        success = _installed(lab, host)
        assert len(success) == 1 and success[0].endswith(
            "and healthy; confirmed over a new SSH connection"
        ), success
    assert not any("reverted" in s for s in lab.subjects())
