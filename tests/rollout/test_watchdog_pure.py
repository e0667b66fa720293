"""The watchdog's rc.d script and the smoke test's shell, as text (pure; no host).

What runs them on a simulated host is in tests/rollout/test_confirm_revert.py;
here: the script has rc.subr's shape, parses, and no value reaches a shell
as syntax.
"""

from __future__ import annotations

import subprocess

import pytest

from reconciler import remote
from reconciler.rollout import scripts, smoke, watchdog


def _parses(text: str) -> None:
    done = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_rc_d_script_has_rc_subr_shape_and_parses() -> None:
    text = watchdog.RC_SCRIPT
    head = text.split(". /etc/rc.subr")[0]
    # rcorder(8) reads these comment lines; late in boot (after LOGIN), never in a jail
    assert f"# PROVIDE: {remote.WATCHDOG}\n" in head
    assert "# REQUIRE: LOGIN sshd\n" in head and "# KEYWORD: nojail\n" in head
    for line in (
        f'rcvar="{remote.WATCHDOG}_enable"',
        "load_rc_config $name",
        'run_rc_command "$1"',
        f"/usr/sbin/daemon -f -p {remote.WATCHDOG_PIDFILE} /bin/sh -c '",
    ):
        assert line in text, line
    _parses(text)


def test_knobs_refuse_a_name_that_is_not_a_plain_word() -> None:
    assert watchdog.knobs("rc-0123456789ab", "default", 30) == (
        'reconciler_confirm_enable="YES"\nreconciler_confirm_timeout="30"\n'
        'reconciler_confirm_previous="default"\nreconciler_confirm_be="rc-0123456789ab"\n'
    )
    for bad in ('x"; reboot; "', "a b", "$(id)", ""):
        with pytest.raises(ValueError, match=r"cannot go into an rc\.conf\.d file"):
            watchdog.knobs("rc-0123456789ab", bad, 30)


def test_arm_and_confirm_pass_values_as_positional_parameters() -> None:
    command = watchdog.arm_command("rc-0123456789ab", "default", 30)
    assert command[:2] == ["sh", "-c"] and command[3] == "sh"
    assert command[4:] == [
        "rc-0123456789ab",
        watchdog.RC_SCRIPT,
        watchdog.knobs("rc-0123456789ab", "default", 30),
        remote.WATCHDOG_SCRIPT,
        remote.WATCHDOG_CONF,
        remote.WATCHDOG_REVERTED,
    ]
    assert "rc-0123456789ab" not in command[2]
    _parses(command[2])
    confirm = watchdog.confirm_command("rolled-back")
    assert confirm[4:] == [remote.WATCHDOG_DECIDED, "rolled-back"]
    _parses(confirm[2])


def test_the_smoke_test_runs_in_the_install_job_with_the_sets_checks_as_arguments() -> None:
    command = scripts.be_install_command(
        "ab" * 32, "GENERIC", "marker", "make", "src", ("nginx -t", "x'; reboot")
    )
    body = command[command.index("-c") + 1]  # daemon -f -p P -o L sh -c BODY sh ARGS...
    assert smoke.SCRIPT in body
    assert command[-2:] == ["nginx -t", "x'; reboot"]
    assert "nginx" not in body
    _parses(body)
    assert smoke.failures(["smoke: ok: sshd -t", "smoke: FAILED: sh -n /etc/rc.conf: line 3"]) == [
        "sh -n /etc/rc.conf: line 3"
    ]
