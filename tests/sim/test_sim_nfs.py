"""NFS as FreeBSD does it: mountd's one export per host and file system, mount_nfs's retries.

- mountd (usr.sbin/mountd/mountd.c, get_exportlist_one/do_mount; the kernel's
  vfs_hang_addrlist): a second line for the same host on the same file system
  is dropped and logged, the reload still exits 0;
- mount_nfs (sbin/mount_nfs/mount_nfs.c, getnfsargs): without bg it retries in
  the foreground until the server answers, so a boot hangs while it is down;
  with bg it backgrounds after the first failure and the boot goes on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config import render
from reconciler.config.load import load_config
from reconciler.errors import SimError
from reconciler.sim import exports
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"
NFS_ON = "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES >/dev/null"


def _load(text: str) -> tuple[list[str], list[str]]:
    """(exported dirs, mountd's complaints) for a single-UFS server's /etc/exports."""
    loaded, messages = exports.load(text, lambda path: "/dev/ada0p2", lambda word: word)
    return [d for e in loaded for d in e["dirs"]], messages


def test_per_path_lines_break_on_a_single_file_system_server() -> None:
    config = load_config(EXAMPLE)
    # Every host but the src host mounts /usr/src; the lab hosts the ports tree too.
    old = render.exports(config)["builder"]
    dirs, messages = _load(old)
    assert any("netcred already exists for given addr/mask" in m for m in messages)
    assert "/usr/ports" not in dirs or "/usr/obj" not in dirs
    ufs = {p: "/dev/ada0p2" for p in ("/usr/src", "/usr/obj", "/usr/ports")}
    new = render.exports(config, {"builder": ufs})["builder"]
    dirs, messages = _load(new)
    assert messages == []
    assert {"/usr/src", "/usr/obj", "/usr/ports"} <= set(dirs)


def test_a_line_over_two_file_systems_is_refused() -> None:
    loaded, messages = exports.load(
        "/usr/src /usr/obj -ro -network 127.0.0.0/8\n",
        lambda path: "zroot" + path,
        lambda word: word,
    )
    assert loaded == []
    assert messages == [
        "bad exports list line '/usr/src /usr/obj -ro -network 127.0.0.0/8': fsid mismatch"
    ]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-nfs") / "fleet"
    fleet = SimFleet.up(
        directory,
        hosts=2,
        ufs=("host1",),
        subnet=fresh_subnet(),
        nfs_retry_seconds=0.5,
        **FAST,
    )
    try:
        yield fleet
    finally:
        fleet.down()


def _export(fleet: SimFleet, text: str) -> str:
    """Write host1's /etc/exports, have mountd read it; return the new syslog lines."""
    before = fleet.read_file("host1", "/var/log/messages") or ""
    ssh_ok(fleet, "host1", f"printf '{text}' > /etc/exports; {NFS_ON}")
    ssh_ok(fleet, "host1", "service mountd reload 2>/dev/null || service nfsd start >/dev/null")
    return (fleet.read_file("host1", "/var/log/messages") or "")[len(before) :]


def test_mountd_refuses_a_second_line_for_a_host_on_one_file_system(fleet: SimFleet) -> None:
    client = fleet.address("host2")
    log = _export(fleet, f"/usr/src -ro {client}\\n/usr/obj -ro {client}\\n")
    assert "mountd[" in log
    assert "can't change attributes for /usr/obj: netcred already exists for given addr/mask" in log
    assert f"bad exports list line '/usr/obj -ro {client}'" in log
    assert ssh_ok(fleet, "host2", "showmount -e host1") == (
        f"Exports list on host1:\n{'/usr/src':<34} {client} \n"
    )
    done = fleet.ssh("host2", "mount -t nfs -o ro,retrycnt=1 host1:/usr/obj /usr/obj")
    assert (done.returncode, done.stderr) == (1, "[tcp] host1:/usr/obj: Permission denied\n")
    # One line per file system, both paths on it: accepted.
    assert "bad exports" not in _export(fleet, f"/usr/src /usr/obj -ro {client}\\n")
    ssh_ok(fleet, "host2", "mount -t nfs -o ro,retrycnt=1 host1:/usr/obj /usr/obj")
    ssh_ok(fleet, "host2", "umount /usr/obj")


def _wait(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _server_down(fleet: SimFleet) -> None:
    _export(fleet, f"/usr/src -ro {fleet.address('host2')}\\n")
    assert fleet.ssh("host1", "shutdown -p now").returncode == 0
    _wait(lambda: fleet.state("host1")["power"] == "off")


def test_boot_without_bg_hangs_while_the_server_is_down(fleet: SimFleet) -> None:
    ssh_ok(fleet, "host2", "printf 'host1:/usr/src\\t/usr/src\\tnfs\\tro\\t0\\t0\\n' >> /etc/fstab")
    try:
        _server_down(fleet)
        since = time.time()
        assert fleet.ssh("host2", "shutdown -r now").returncode == 0
        with pytest.raises(SimError, match="did not come up"):
            fleet.wait_up("host2", 6, since=since)  # rc(8) waits in mount_nfs
        fleet.power_cycle("host1")  # the server comes back; its mountd loads /etc/exports
        fleet.wait_up("host1", 20)
        fleet.wait_up("host2", 20, since=since)  # the next try succeeded, the boot went on
        assert "host1:/usr/src" in ssh_ok(fleet, "host2", "mount -p -t nfs")
    finally:
        ssh_ok(fleet, "host2", "umount /usr/src; sed -i '/nfs/d' /etc/fstab")


def test_boot_with_bg_goes_on_and_mounts_later(fleet: SimFleet) -> None:
    line = "host1:/usr/src\\t/usr/src\\tnfs\\tro,bg\\t0\\t0\\n"
    ssh_ok(fleet, "host2", f"printf '{line}' >> /etc/fstab")
    try:
        _server_down(fleet)
        since = time.time()
        assert fleet.ssh("host2", "shutdown -r now").returncode == 0
        fleet.wait_up("host2", 20, since=since)
        assert ssh_ok(fleet, "host2", "mount -p -t nfs") == ""
        fleet.power_cycle("host1")
        fleet.wait_up("host1", 20)
        _wait(lambda: "host1:/usr/src" in fleet.ssh("host2", "mount -p -t nfs").stdout)
    finally:
        ssh_ok(fleet, "host2", "umount /usr/src; sed -i '/nfs/d' /etc/fstab")
