"""The simulated pieces confirm-or-revert and the smoke test stand on, through real SSH.

rc(8) at boot runs the booted world's enabled rc.d scripts (rcorder order,
faststart); ``jail -c`` runs a command chrooted in a mounted BE; the two
faults: a world whose sshd_config is broken, a world whose network does not
come up (the host is up, its sshd is not).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok

OBJ = "/usr/obj/c1"
ENV = f"env MAKEOBJDIRPREFIX={OBJ}"

# An rc.d script as a port would ship it: it records that it ran, and how.
PROBE = r"""#!/bin/sh
# PROVIDE: simprobe
# REQUIRE: LOGIN
# KEYWORD: shutdown

. /etc/rc.subr

name="simprobe"
rcvar="simprobe_enable"
start_cmd="simprobe_start"
stop_cmd=":"

simprobe_start()
{
	echo "$rc_arg fast=$rc_fast $(cat /run/freebsd-sim.host)" >> /var/db/simprobe.log
	daemon -f sh -c 'sleep 0.2; echo detached >> /var/db/simprobe.log'
}

load_rc_config $name
run_rc_command "$1"
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-confirm") / "fleet"
    fleet = SimFleet.up(directory, hosts=1, subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


def _reboot(fleet: SimFleet, host: str = "host1") -> None:
    since = time.time()
    assert fleet.ssh(host, "shutdown -r now").returncode == 0
    fleet.wait_up(host, timeout=30, since=since)


def _be(fleet: SimFleet, name: str) -> str:
    """A new BE ``name`` with a world installed into it, mounted; returns its mountpoint."""
    if fleet.read_file("host1", f"{OBJ}/usr/src/amd64.amd64/toolchain-metadata.mk") is None:
        ssh_ok(fleet, "host1", f"{ENV} make -C /usr/src buildworld")
    ssh_ok(fleet, "host1", f"bectl create {name}")
    mnt = ssh_ok(fleet, "host1", f"bectl mount {name}").strip()
    ssh_ok(fleet, "host1", f"{ENV} make -C /usr/src installworld DESTDIR={mnt} DB_FROM_SRC=1")
    return mnt


def test_boot_runs_the_enabled_rc_d_scripts_of_the_booted_world(fleet: SimFleet) -> None:
    ssh_ok(
        fleet,
        "host1",
        "mkdir -p /usr/local/etc/rc.d && cat > /usr/local/etc/rc.d/simprobe "
        f"<<'EOF'\n{PROBE}EOF\nchmod 755 /usr/local/etc/rc.d/simprobe",
    )
    _reboot(fleet)
    assert fleet.read_file("host1", "/var/db/simprobe.log") is None  # not enabled: not run
    ssh_ok(
        fleet,
        "host1",
        "mkdir -p /etc/rc.conf.d && echo simprobe_enable=YES > /etc/rc.conf.d/simprobe",
    )
    _reboot(fleet)
    time.sleep(0.5)
    log = fleet.read_file("host1", "/var/db/simprobe.log")
    # /etc/rc sources it with faststart; what it leaves to daemon(8) goes on after the boot.
    assert log == "start fast=yes host1\ndetached\n", log
    # rc.subr's verbs outside the boot, as service(8) would run them.
    out = fleet.ssh(
        "host1",
        "sh /usr/local/etc/rc.d/simprobe rcvar; sh /usr/local/etc/rc.d/simprobe enabled; echo $?",
    )
    assert out.stdout == 'simprobe_enable="YES"\n0\n', out
    ssh_ok(
        fleet,
        "host1",
        "rm -f /usr/local/etc/rc.d/simprobe /etc/rc.conf.d/simprobe /var/db/simprobe.log",
    )


def test_rcorder_orders_by_provide_and_require(fleet: SimFleet) -> None:
    ssh_ok(
        fleet,
        "host1",
        "mkdir -p /tmp/rco && cd /tmp/rco && "
        "printf '# PROVIDE: b\\n# REQUIRE: a\\n' > b && "
        "printf '# PROVIDE: a\\n# REQUIRE: LOGIN\\n' > a && "
        "printf '# PROVIDE: c\\n# KEYWORD: nostart\\n' > c",
    )
    done = fleet.ssh("host1", "rcorder -s nostart /tmp/rco/b /tmp/rco/a /tmp/rco/c")
    assert done.stdout.split() == ["/tmp/rco/a", "/tmp/rco/b"], done
    assert "requirement `LOGIN' in file `/tmp/rco/a' has no providers." in done.stderr


def test_jail_runs_commands_chrooted_in_the_mounted_be(fleet: SimFleet) -> None:
    mnt = _be(fleet, "jailed")
    try:
        ssh_ok(fleet, "host1", f"echo inside > {mnt}/root/where")
        out = ssh_ok(
            fleet,
            "host1",
            f"jail -q -c path={mnt} mount.devfs command=/bin/sh -c "
            "'cat /root/where; ls /dev/null; freebsd-version -u; "
            "sshd -t -f /etc/ssh/sshd_config && echo sshd-ok'",
        )
        words = out.split()
        assert words[:2] == ["inside", "/dev/null"] and words[3] == "sshd-ok", out
        assert words[2].endswith("-STABLE"), out  # the new world's freebsd-version
        assert fleet.read_file("host1", "/root/where") is None  # the host's own root is untouched
        # The command's status is jail's; the devfs goes away with the jail.
        done = fleet.ssh("host1", f"jail -q -c path={mnt} mount.devfs command=sh -n /nonexistent")
        assert done.returncode != 0
        assert ssh_ok(fleet, "host1", f"ls {mnt}/dev | wc -l").strip() == "0"
        built = ssh_ok(
            fleet, "host1", f"sh {OBJ}/usr/src/amd64.amd64/bin/freebsd-version/freebsd-version -u"
        )
        inside = ssh_ok(fleet, "host1", f"jail -q -c path={mnt} command=freebsd-version -u")
        assert built == inside
    finally:
        ssh_ok(fleet, "host1", "bectl umount jailed && bectl destroy jailed")


def test_sshd_config_broken_fails_sshd_t_in_the_new_world(fleet: SimFleet) -> None:
    fleet.set_fault("host1", "sshd-config-broken")
    try:
        mnt = _be(fleet, "badssh")
    finally:
        fleet.clear_fault("host1", "sshd-config-broken")
    try:
        done = fleet.ssh(
            "host1", f"jail -q -c path={mnt} mount.devfs command=sshd -t -f /etc/ssh/sshd_config"
        )
        assert done.returncode != 0, done
        assert "maybe-not" in done.stderr, done.stderr
        # the running world's sshd_config is fine
        ssh_ok(fleet, "host1", "sshd -t -f /etc/ssh/sshd_config")
    finally:
        ssh_ok(fleet, "host1", "bectl umount badssh && bectl destroy badssh")


def test_net_broken_after_boot_the_host_is_up_without_sshd(fleet: SimFleet) -> None:
    fleet.set_fault("host1", "net-broken-after-boot")
    try:
        _be(fleet, "nonet")
    finally:
        fleet.clear_fault("host1", "net-broken-after-boot")
    ssh_ok(fleet, "host1", "bectl umount nonet && bectl activate -t nonet")
    boots = fleet.count("host1", "boot")
    assert fleet.ssh("host1", "shutdown -r now").returncode == 0
    deadline = time.monotonic() + 20
    while fleet.count("host1", "boot") == boots or fleet.state("host1")["booted_be"] != "nonet":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    assert fleet.state("host1")["power"] == "on"
    assert fleet.ssh("host1", "true", timeout=10).returncode == 255  # no sshd answers
    fleet.power_cycle("host1")  # the one-shot was used: the old world comes back
    since = time.time()
    fleet.wait_up("host1", timeout=30, since=since - 5)
    assert fleet.state("host1")["booted_be"] == "default"
    ssh_ok(fleet, "host1", "bectl destroy nonet")
