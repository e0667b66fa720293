"""Every injectable fault of the simulated fleet, through real SSH."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from reconciler.errors import SimError
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok

# The tests share one module-scoped fleet (one pytest-xdist worker per file:
# Makefile's --dist loadfile); each brings about the state it needs itself.
OBJ = "/usr/obj/f1"
ENV = f"env MAKEOBJDIRPREFIX={OBJ}"
META = f"{OBJ}/usr/src/amd64.amd64/toolchain-metadata.mk"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-faults") / "fleet"
    fleet = SimFleet.up(directory, hosts=2, obj_in_be=("host2",), subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


@pytest.fixture
def built(fleet: SimFleet) -> SimFleet:
    """host1 with a world and a MINIMAL kernel built in OBJ (built once per fleet)."""
    if fleet.read_file("host1", META) is None:
        ssh_ok(fleet, "host1", f"{ENV} make -C /usr/src buildworld buildkernel KERNCONF=MINIMAL")
    return fleet


def reboot(fleet: SimFleet, host: str) -> float:
    since = time.time()
    assert fleet.ssh(host, "shutdown -r now").returncode == 0  # it returns before going down
    return since


def wait_power(fleet: SimFleet, host: str, power: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while fleet.state(host)["power"] != power:
        assert time.monotonic() < deadline, fleet.state(host)["power"]
        time.sleep(0.05)


def test_build_fails(fleet: SimFleet) -> None:
    env, meta = f"{ENV}-fail", META.replace(OBJ, f"{OBJ}-fail")
    fleet.set_fault("host1", "build-fails")
    done = fleet.ssh("host1", f"{env} make -C /usr/src buildworld")
    assert done.returncode == 2
    assert ">>> World build started on " in done.stdout
    assert ">>> World build completed" not in done.stdout
    assert "*** Error code 1" in done.stderr and done.stderr.rstrip().endswith(
        "make: stopped in /usr/src"
    )
    assert fleet.read_file("host1", meta) is None
    fleet.clear_fault("host1", "build-fails")
    ssh_ok(fleet, "host1", f"{env} make -C /usr/src buildworld")
    assert fleet.read_file("host1", meta)


def test_install_fails_midway(built: SimFleet) -> None:
    fleet = built
    fleet.set_fault("host1", "install-fails")
    done = fleet.ssh("host1", f"{ENV} make -C /usr/src installworld")
    assert done.returncode == 2 and "*** Error code 71" in done.stderr
    assert "===> lib/libc (install)" in done.stdout
    assert ">>> Installing everything completed" not in done.stdout
    fleet.clear_fault("host1", "install-fails")


def test_health_fails(fleet: SimFleet) -> None:
    fleet.set_fault("host2", "health-fails")
    done = fleet.ssh("host2", "service sshd status")
    assert (done.returncode, done.stdout) == (1, "sshd is not running.\n")
    fleet.set_fault("host2", "health-fails", "nfsd")  # only that service
    assert ssh_ok(fleet, "host2", "service sshd status") == "sshd is running as pid 1.\n"
    fleet.clear_fault("host2", "health-fails")


def test_reboot_hangs_until_cleared(fleet: SimFleet) -> None:
    fleet.set_fault("host2", "reboot-hangs")
    since = reboot(fleet, "host2")
    wait_power(fleet, "host2", "hung")
    with pytest.raises(SimError, match="did not come up"):
        fleet.wait_up("host2", 1.5, since=since)
    assert fleet.state("host2")["power"] == "hung"
    assert fleet.ssh("host2", "true", timeout=20).returncode == 255
    fleet.clear_fault("host2", "reboot-hangs")
    fleet.wait_up("host2", 20, since=since)


def _new_kernel_in_be(fleet: SimFleet, be: str) -> None:
    ssh_ok(
        fleet,
        "host1",
        f"bectl create {be} && bectl mount {be} /mnt/{be} >/dev/null && "
        f"{ENV} make -C /usr/src installkernel KERNCONF=MINIMAL DESTDIR=/mnt/{be} >/dev/null && "
        f"bectl umount {be}",
    )


def test_kernel_panic_one_shot_falls_back(built: SimFleet) -> None:
    fleet = built
    _new_kernel_in_be(fleet, "panicky")
    fleet.set_fault("host1", "kernel-panic")
    ssh_ok(fleet, "host1", "bectl activate -t panicky")
    since = reboot(fleet, "host1")
    fleet.wait_up("host1", 20, since=since)
    assert ssh_ok(fleet, "host1", "uname -i; bectl list -H | cut -f1,2") == (
        "GENERIC\ndefault\tNR\npanicky\t-\n"
    )
    assert fleet.count("host1", "panic") == 1

    # Permanently activated, the panicking kernel never comes back until the fault goes.
    ssh_ok(fleet, "host1", "bectl activate panicky")
    since = reboot(fleet, "host1")
    deadline = time.monotonic() + 10
    while fleet.state("host1")["power"] != "panic":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fleet.clear_fault("host1", "kernel-panic")
    fleet.wait_up("host1", 20, since=since)
    assert ssh_ok(fleet, "host1", "uname -i") == "MINIMAL\n"
    ssh_ok(fleet, "host1", "bectl activate default")
    since = reboot(fleet, "host1")
    fleet.wait_up("host1", 20, since=since)
    ssh_ok(fleet, "host1", "bectl destroy panicky")


def test_kernel_hang_stays_down_until_power_cycled(built: SimFleet) -> None:
    """activate -t falls back only if the failed boot reboots: a hang stays hung."""
    fleet = built
    _new_kernel_in_be(fleet, "hangs")
    fleet.set_fault("host1", "kernel-hang")
    ssh_ok(fleet, "host1", "bectl activate -t hangs")
    since = reboot(fleet, "host1")
    wait_power(fleet, "host1", "hung")
    time.sleep(1.5)  # a hung kernel does not reboot by itself: no fallback happens
    assert fleet.state("host1")["power"] == "hung"
    assert fleet.ssh("host1", "true", timeout=20).returncode == 255
    assert fleet.count("host1", "hang") == 1
    fleet.power_cycle("host1")
    fleet.wait_up("host1", 20, since=since)
    # The loader used up the one-shot on the boot that hung: the power cycle boots default.
    assert ssh_ok(fleet, "host1", "uname -i; bectl list -H | cut -f1,2") == (
        "GENERIC\ndefault\tNR\nhangs\t-\n"
    )
    fleet.clear_fault("host1", "kernel-hang")
    ssh_ok(fleet, "host1", "bectl destroy hangs")


def test_halted_host_stays_off_until_power_cycled(fleet: SimFleet) -> None:
    since = time.time()
    done = fleet.ssh("host2", "shutdown -p now")
    assert (done.returncode, done.stdout) == (0, "Shutdown NOW!\n")
    wait_power(fleet, "host2", "off")
    time.sleep(1.0)
    assert fleet.state("host2")["power"] == "off"
    fleet.power_cycle("host2")
    fleet.wait_up("host2", 20, since=since)
    assert fleet.count("host2", "power-cycle") >= 1


def test_shutdown_returns_while_the_old_system_still_runs(fleet: SimFleet) -> None:
    before = ssh_ok(fleet, "host2", "sysctl -n kern.boottime")
    since = time.time()
    done = fleet.ssh("host2", "shutdown -r now; sysctl -n kern.boottime")
    assert done.returncode == 0
    assert done.stdout == "Shutdown NOW!\n" + before  # the same boot, still answering
    assert ssh_ok(fleet, "host2", "sysctl -n kern.boottime") == before
    fleet.wait_up("host2", 20, since=since)
    assert ssh_ok(fleet, "host2", "sysctl -n kern.boottime") != before


def test_connection_drop_attached_and_detached(fleet: SimFleet) -> None:
    fleet.set_fault("host1", "connection-drop")
    done = fleet.ssh("host1", f"{ENV}-drop make -C /usr/src buildworld")
    assert done.returncode == 255  # the session died under the command
    assert ">>> World build completed" not in done.stdout
    assert "connection-drop" not in fleet.faults("host1")  # once, then cleared
    time.sleep(1)
    # The attached build died with its session.
    assert fleet.read_file("host1", META.replace(OBJ, f"{OBJ}-drop")) is None

    # Under daemon(8) the build survives; the sessions open at that moment drop.
    watcher = subprocess.Popen(
        ["ssh", "-F", str(fleet.ssh_config), "host1", "sleep 30"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        fleet.set_fault("host1", "connection-drop")
        ssh_ok(
            fleet,
            "host1",
            f"daemon -f -p /var/run/b.pid -o /var/log/b.log sh -c "
            f"'{ENV} make -C /usr/src buildworld; echo $? > /var/log/b.exit'",
        )
        assert watcher.wait(timeout=20) == 255
    finally:
        watcher.kill()
        watcher.wait()
    deadline = time.monotonic() + 20
    while fleet.read_file("host1", "/var/log/b.exit") is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert fleet.read_file("host1", "/var/log/b.exit") == "0\n"
    assert ">>> World build completed" in (fleet.read_file("host1", "/var/log/b.log") or "")


def test_slow_host(fleet: SimFleet) -> None:
    started = time.monotonic()
    ssh_ok(fleet, "host1", f"{ENV}-s make -C /usr/src buildworld >/dev/null")
    normal = time.monotonic() - started
    fleet.set_fault("host1", "slow", 4)
    started = time.monotonic()
    ssh_ok(fleet, "host1", f"{ENV}-s make -C /usr/src buildworld >/dev/null")
    slow = time.monotonic() - started
    fleet.clear_fault("host1", "slow")
    assert slow >= 4 * FAST["build_seconds"] * 0.9
    assert slow > normal + 1


def test_obj_in_be_is_lost_on_a_be_switch(fleet: SimFleet) -> None:
    # bsdinstall's default: /usr/obj is no dataset of its own, so it lives in the BE.
    listing = ssh_ok(fleet, "host2", "mount -p | cut -f1")
    assert "zroot/usr/obj" not in listing and "zroot/usr/src" in listing
    ssh_ok(
        fleet,
        "host2",
        "mkdir -p /usr/obj/before && bectl create b2 && mkdir /usr/obj/after && bectl activate b2",
    )
    since = reboot(fleet, "host2")
    fleet.wait_up("host2", 20, since=since)
    assert ssh_ok(fleet, "host2", "ls /usr/obj") == "before\n"
    ssh_ok(fleet, "host2", "bectl activate default")
    since = reboot(fleet, "host2")
    fleet.wait_up("host2", 20, since=since)
    assert ssh_ok(fleet, "host2", "ls /usr/obj") == "after\nbefore\n"
    assert fleet.count("host2", "boot") >= 3


def test_unknown_fault_is_refused(fleet: SimFleet) -> None:
    with pytest.raises(SimError, match="unknown fault"):
        fleet.set_fault("host1", "gremlins")
    with pytest.raises(SimError, match="no host"):
        fleet.set_fault("host9", "slow")
