"""The simulated FreeBSD commands, driven through real SSH (OpenSSH client and paramiko)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from reconciler.sim import upstream
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok

# The tests share one module-scoped fleet, started once: Makefile's --dist
# loadfile keeps a file on one pytest-xdist worker. Each test stands alone.

OBJ = "/usr/obj/t1"
ENV = f"env MAKEOBJDIRPREFIX={OBJ}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-commands") / "fleet"
    fleet = SimFleet.up(directory, hosts=3, ufs=("host3",), subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


def checkout(fleet: SimFleet, host: str, index: int) -> str:
    rev = upstream.COMMITS[index]
    ssh_ok(
        fleet,
        host,
        f"git -C /usr/src fetch -q origin stable/14 && git -C /usr/src checkout -q --detach {rev}",
    )
    return rev


def test_reading_commands(fleet: SimFleet) -> None:
    out = ssh_ok(
        fleet,
        "host1",
        "freebsd-version -urk; uname -v; uname -iKU; uname -a; sysctl kern.bootfile; "
        "sysctl -n kern.ident kern.osrelease; uname -mp",
    )
    lines = out.splitlines()
    assert lines[:3] == ["14.1-STABLE"] * 3
    head = upstream.COMMITS[0][:12]
    assert re.fullmatch(
        rf"FreeBSD 14\.1-STABLE #0 n1-{head}: \w{{3}} \w{{3}} \d\d \d\d:\d\d:\d\d UTC \d{{4}}"
        r"     root@host1:/usr/obj/usr/src/amd64\.amd64/sys/GENERIC ",
        lines[3],
    ), lines[3]
    assert lines[4] == "GENERIC 1401500 1401500"
    assert lines[5].startswith("FreeBSD host1 14.1-STABLE FreeBSD 14.1-STABLE #0 ")
    assert lines[5].endswith(" amd64")
    assert lines[6:] == [
        "kern.bootfile: /boot/kernel/kernel",
        "GENERIC",
        "14.1-STABLE",
        "amd64 amd64",
    ]
    bad = fleet.ssh("host1", "sysctl -n kern.nonesuch")
    assert (bad.returncode, bad.stderr) == (1, "sysctl: unknown oid 'kern.nonesuch'\n")
    assert ssh_ok(fleet, "host1", "git -C /usr/src rev-parse HEAD").strip() == upstream.COMMITS[0]
    assert ssh_ok(fleet, "host2", "ls -A /usr/src") == ""  # only the src host has a checkout
    done = fleet.ssh("host2", "etcupdate")
    assert (done.returncode, done.stdout) == (1, "Failed to build new tree.\n")


def test_paramiko_client(fleet: SimFleet) -> None:
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    key = paramiko.Ed25519Key.from_private_key_file(str(fleet.client_key))
    client.connect(
        fleet.address("host2"),
        port=fleet.port("host2"),
        username="root",
        pkey=key,
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    try:
        _, stdout, _ = client.exec_command("uname -i; bectl list -H; freebsd-version -k")
        out = stdout.read().decode()
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()
    lines = out.splitlines()
    assert lines[0] == "GENERIC"
    assert lines[1].split("\t")[:3] == ["default", "NR", "/"]
    assert lines[2] == "14.1-STABLE"


def test_make_errors_like_freebsd(fleet: SimFleet) -> None:
    done = fleet.ssh("host1", f"{ENV}-none make -C /usr/src installworld")
    assert done.returncode == 2
    assert "A build is required first.  You may have the wrong MAKEOBJDIRPREFIX set." in done.stderr
    done = fleet.ssh("host1", 'make -C /usr/src buildkernel KERNCONF="GENERIC NOPE"')
    assert done.returncode == 2
    assert "Missing KERNCONF /usr/src/sys/amd64/conf/NOPE" in done.stderr
    done = fleet.ssh("host1", "make -C /usr/src buildworld MAKEOBJDIRPREFIX=/tmp/x")
    assert done.returncode == 1 and "MAKEOBJDIRPREFIX can only be set in environment" in done.stderr
    done = fleet.ssh("host1", "make -C /usr/src installkernel KERNCONF=NOPE")
    assert done.returncode == 2 and 'ERROR: No kernel "NOPE" to install.' in done.stderr
    assert fleet.count("host1", "buildworld") == 0


def test_build_install_into_be_and_one_shot_boot(fleet: SimFleet) -> None:
    rev = checkout(fleet, "host1", 2)
    ssh_ok(fleet, "host1", "printf 'KERNCONF=MINIMAL GENERIC\\n' > /etc/make.conf")
    out = ssh_ok(fleet, "host1", f"{ENV} make -C /usr/src -j 2 buildworld buildkernel")
    stages = [line for line in out.splitlines() if line.startswith(">>> ")]
    assert stages[0].startswith(">>> World build started on ")
    assert ">>> stage 4.2: building libraries" in stages
    assert any(s.startswith(">>> Kernel build for MINIMAL completed on ") for s in stages)
    assert any(s.startswith(">>> Kernel build for GENERIC completed on ") for s in stages)
    assert fleet.read_file("host1", f"{OBJ}/usr/src/amd64.amd64/toolchain-metadata.mk")
    assert (fleet.count("host1", "buildworld"), fleet.count("host1", "buildkernel")) == (1, 1)

    ssh_ok(fleet, "host1", "bectl create rc-new")
    mnt = ssh_ok(fleet, "host1", "bectl mount rc-new /mnt/be").strip()
    assert mnt == "/mnt/be"
    ssh_ok(
        fleet,
        "host1",
        f"{ENV} make -C /usr/src installkernel DESTDIR=/mnt/be && "
        "etcupdate -p -s /usr/src -D /mnt/be -F && "
        f"{ENV} make -C /usr/src installworld DESTDIR=/mnt/be && "
        "etcupdate -s /usr/src -D /mnt/be -F && etcupdate status -D /mnt/be && "
        f"{ENV} make -C /usr/src delete-old DESTDIR=/mnt/be BATCH_DELETE_OLD_FILES=yes",
    )
    listing = ssh_ok(fleet, "host1", "bectl list -H; mount -p | grep rc-new")
    assert "rc-new\t-\t/mnt/be\t" in listing
    assert "zroot/ROOT/rc-new\t/mnt/be\t\t\tzfs\trw,nfsv4acls \t0 0" in listing
    # The running system is untouched until the reboot.
    assert (
        ssh_ok(fleet, "host1", "uname -i; freebsd-version -ku")
        == "GENERIC\n14.1-STABLE\n14.1-STABLE\n"
    )
    assert ssh_ok(fleet, "host1", "bectl umount rc-new && bectl activate -t rc-new") == (
        "Successfully activated boot environment rc-new\nfor next boot\n"
    )
    assert "rc-new\tT\t-\t" in ssh_ok(fleet, "host1", "bectl list -H")

    since = time.time()
    done = fleet.ssh("host1", "shutdown -r now")
    # shutdown.c: "Shutdown NOW!", then errx(0, "[pid %d]"): it returns before the reboot.
    assert (done.returncode, done.stdout) == (0, "Shutdown NOW!\n")
    assert re.fullmatch(r"shutdown: \[pid \d+\]\n", done.stderr), done.stderr
    fleet.wait_up("host1", 20, since=since)
    out = ssh_ok(fleet, "host1", "uname -i; uname -v; freebsd-version -kru; bectl list -H")
    lines = out.splitlines()
    assert lines[0] == "MINIMAL"
    assert f"n3-{rev[:12]}:" in lines[1] and f"{OBJ}/usr/src/amd64.amd64/sys/MINIMAL" in lines[1]
    assert lines[2:5] == ["14.2-STABLE"] * 3
    assert lines[5].split("\t")[:2] == ["default", "R"]
    assert lines[6].split("\t")[:3] == ["rc-new", "N", "/"]
    assert fleet.count("host1", "reboot") == 1

    # A one-shot activation is used once: the next boot is the permanent BE again.
    since = time.time()
    fleet.ssh("host1", "shutdown -r now")
    fleet.wait_up("host1", 20, since=since)
    assert ssh_ok(fleet, "host1", "uname -i; bectl list -H").splitlines()[:2] == [
        "GENERIC",
        lines[5].replace("R", "NR", 1).replace("\t-\t", "\t/\t", 1),
    ]
    assert fleet.state("host1")["booted_be"] == "default"


def test_installworld_into_a_be_checks_the_running_systems_users(fleet: SimFleet) -> None:
    """Makefile.inc1 CHECK_UIDS asks the running system (id -u), not DESTDIR, unless DB_FROM_SRC."""
    checkout(fleet, "host1", 4)  # the newest commit adds the _simd user
    env = f"{ENV}-users"
    ssh_ok(fleet, "host1", f"{env} make -C /usr/src buildworld >/dev/null")
    ssh_ok(fleet, "host1", "bectl create users && bectl mount users /mnt/users >/dev/null")
    try:
        ssh_ok(fleet, "host1", "etcupdate -p -s /usr/src -D /mnt/users -F")
        assert "_simd:" in (ssh_ok(fleet, "host1", "cat /mnt/users/etc/master.passwd"))
        done = fleet.ssh("host1", f"{env} make -C /usr/src installworld DESTDIR=/mnt/users")
        assert done.returncode == 2
        # host1 runs the oldest world: it lacks _sim and _simd, though the BE has both.
        assert "ERROR: Required _sim user is missing, see /usr/src/UPDATING." in done.stderr
        done = fleet.ssh("host1", f"{env} make -C /usr/src installworld DB_FROM_SRC=1")
        assert done.returncode == 2 and "ERROR: Please set DESTDIR!" in done.stderr
        out = ssh_ok(
            fleet, "host1", f"{env} make -C /usr/src installworld DESTDIR=/mnt/users DB_FROM_SRC=1"
        )
        assert ">>> Installing everything completed on " in out
    finally:
        ssh_ok(fleet, "host1", "bectl umount -f users; bectl destroy -F users")


def test_bectl_errors(fleet: SimFleet) -> None:
    ssh_ok(fleet, "host2", "bectl create spare")
    done = fleet.ssh("host2", "bectl destroy default")
    assert (done.returncode, done.stderr) == (5, "cannot destroy active boot environment\n")
    done = fleet.ssh("host2", "bectl create spare")
    assert done.returncode == 2 and "boot environment name already taken" in done.stderr
    done = fleet.ssh("host2", "bectl mount nope")
    assert done.returncode == 3 and "specified boot environment does not exist" in done.stderr
    assert ssh_ok(
        fleet, "host2", "bectl activate -t spare; bectl activate -T; bectl list -H | cut -f1,2"
    ) == (
        "Successfully activated boot environment spare\nfor next boot\n"
        "Temporary activation removed\ndefault\tNR\nspare\t-\n"
    )
    assert (
        ssh_ok(fleet, "host2", "bectl check; bectl destroy -F spare; bectl list -H | wc -l").strip()
        == "1"
    )
    done = fleet.ssh("host3", "bectl list -H")
    assert (done.returncode, done.stderr) == (255, 'libbe_init("") failed.\n')
    assert fleet.ssh("host3", "bectl check").returncode == 255


def test_permanent_activation_keeps_a_pending_one_shot(fleet: SimFleet) -> None:
    """libbe be_activate: only activate -T clears the one-shot a permanent activate leaves."""
    ssh_ok(fleet, "host2", "bectl create once && bectl activate -t once >/dev/null")
    assert ssh_ok(fleet, "host2", "bectl activate default") == (
        "Successfully activated boot environment default\n"
    )
    assert ssh_ok(fleet, "host2", "bectl list -H | cut -f1,2") == "default\tNR\nonce\tT\n"
    since = time.time()
    assert fleet.ssh("host2", "shutdown -r now").returncode == 0
    fleet.wait_up("host2", 20, since=since)
    assert fleet.state("host2")["booted_be"] == "once"  # the one-shot won
    ssh_ok(fleet, "host2", "bectl activate -t default >/dev/null; bectl activate -T")
    assert ssh_ok(fleet, "host2", "bectl list -H | cut -f1,2") == "default\tR\nonce\tN\n"
    since = time.time()
    assert fleet.ssh("host2", "shutdown -r now").returncode == 0
    fleet.wait_up("host2", 20, since=since)
    assert fleet.state("host2")["booted_be"] == "default"
    ssh_ok(fleet, "host2", "bectl destroy once")


def test_in_place_over_nfs_and_kernel_old(fleet: SimFleet) -> None:
    checkout(fleet, "host1", 3)
    ssh_ok(fleet, "host1", f"{ENV}-new make -C /usr/src buildworld buildkernel KERNCONF=GENERIC")
    mount = f"mount -t nfs -o ro,retrycnt=1 {fleet.address('host1')}:/usr/src /usr/src"
    done = fleet.ssh("host3", mount)
    assert done.returncode == 1 and "RPCPROG_MNT: RPC: Program not registered" in done.stderr
    # One line naming two datasets: mountd refuses it ("fsid mismatch"), yet reload exits 0.
    ssh_ok(
        fleet,
        "host1",
        "echo '/usr/src /usr/obj -ro -maproot=root -network 127.0.0.0/8' > /etc/exports && "
        "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES && "
        "{ service mountd reload 2>/dev/null || service nfsd start; }",
    )
    done = fleet.ssh("host3", mount)
    assert done.returncode == 1 and "Permission denied" in done.stderr
    assert "fsid mismatch" in (fleet.read_file("host1", "/var/log/messages") or "")
    ssh_ok(
        fleet,
        "host1",
        "printf '/usr/src -ro -maproot=root -network 127.0.0.0/8\\n"
        "/usr/obj -ro -maproot=root -network 127.0.0.0/8\\n' > /etc/exports && "
        "service mountd reload",
    )
    ssh_ok(fleet, "host3", f"{mount} && mount -t nfs -o ro,retrycnt=1 host1:/usr/obj /usr/obj")
    assert ssh_ok(fleet, "host3", "mount -p | grep nfs") == (
        f"{fleet.address('host1')}:/usr/src\t/usr/src\t\tnfs\tro\t\t0 0\n"
        "host1:/usr/obj\t\t/usr/obj\t\tnfs\tro\t\t0 0\n"
    )
    assert fleet.ssh("host3", "touch /usr/obj/x").returncode != 0  # read-only
    out = ssh_ok(
        fleet,
        "host3",
        f"{ENV}-new make -C /usr/src installkernel KERNCONF=GENERIC >/dev/null && "
        "sysctl -n kern.bootfile; freebsd-version -kr; ls /boot",
    )
    assert out.splitlines()[:3] == ["/boot/kernel.old/kernel", "14.2-STABLE", "14.1-STABLE"]
    assert {"kernel", "kernel.old"} <= set(out.splitlines()[3:])
    # The newest source adds a user: installworld wants etcupdate -p first
    # (Makefile.inc1 CHECK_UIDS).
    done = fleet.ssh("host3", f"{ENV}-new make -C /usr/src installworld")
    assert done.returncode == 2
    assert "ERROR: Required _sim user is missing, see /usr/src/UPDATING." in done.stderr
    assert "  U /etc/master.passwd" in ssh_ok(fleet, "host3", "etcupdate -p")
    ssh_ok(fleet, "host3", f"{ENV}-new make -C /usr/src installworld >/dev/null")
    # etcupdate -B would build in the read-only NFS objdir (src.sys.obj.mk): it fails.
    done = fleet.ssh("host3", f"{ENV}-new etcupdate -B")
    assert (done.returncode, done.stdout) == (1, "Failed to build new tree.\n")
    assert "Read-only file system" in (fleet.read_file("host3", "/var/db/etcupdate/log") or "")
    out = ssh_ok(
        fleet,
        "host3",
        "etcupdate && freebsd-version -u && umount /usr/src /usr/obj && "
        "mount -p | grep -c nfs || true",
    )
    assert out.splitlines()[-2:] == ["14.2-STABLE", "0"]
    # The handbook's reboot after installkernel: the new kernel runs, bootfile is reset.
    since = time.time()
    assert fleet.ssh("host3", "shutdown -r now").returncode == 0
    fleet.wait_up("host3", 20, since=since)
    out = ssh_ok(fleet, "host3", "sysctl -n kern.bootfile; freebsd-version -kru; uname -v")
    assert out.splitlines()[:4] == ["/boot/kernel/kernel"] + ["14.2-STABLE"] * 3
    assert f"n4-{upstream.COMMITS[3][:12]}:" in out


def test_etcupdate_conflicts(fleet: SimFleet) -> None:
    checkout(fleet, "host1", 0)
    ssh_ok(fleet, "host1", "echo 'local motd' > /etc/motd.template")
    checkout(fleet, "host1", 2)
    out = ssh_ok(fleet, "host1", "etcupdate; etcupdate status")
    assert out == "  C /etc/motd.template\n  C /etc/motd.template\n"
    done = fleet.ssh("host1", "etcupdate")
    assert (done.returncode, done.stdout) == (
        1,
        "Conflicts remain from previous update, aborting.\n",
    )
    ssh_ok(fleet, "host1", "rm -r /var/db/etcupdate/conflicts")
    fleet.set_fault("host1", "etcupdate-conflict")
    assert "  C /etc/rc.conf" in ssh_ok(fleet, "host1", "etcupdate -B")
    assert ssh_ok(fleet, "host1", "etcupdate status") == "  C /etc/rc.conf\n"
    assert "etcupdate-conflict" not in fleet.faults("host1")


def test_service_sysrc_daemon(fleet: SimFleet) -> None:
    out = ssh_ok(
        fleet,
        "host2",
        "service sshd status; sysrc -n sshd_enable; sysrc nfs_client_enable=YES; "
        "sysrc nfs_client_enable",
    )
    assert out == (
        "sshd is running as pid 1.\nYES\nnfs_client_enable: NO -> YES\nnfs_client_enable: YES\n"
    )
    assert 'nfs_client_enable="YES"' in (fleet.read_file("host2", "/etc/rc.conf") or "")
    done = fleet.ssh("host2", "service nfsd start")
    assert done.returncode == 1
    assert done.stderr == (
        "Cannot 'start' nfsd. Set nfs_server_enable to YES in /etc/rc.conf or use "
        "'onestart' instead of 'start'.\n"
    )
    # Enabling is not starting (until the next boot): the rollout's exports sequence.
    out = ssh_ok(
        fleet,
        "host2",
        "sysrc -q nfs_server_enable=YES mountd_enable=YES rpcbind_enable=YES; "
        "service mountd reload; echo $?; service nfsd start",
    )
    assert out == "1\nStarting rpcbind.\nStarting mountd.\nStarting nfsd.\n"
    assert ssh_ok(fleet, "host2", "service mountd reload; service mountd status").startswith(
        "mountd is running as pid "
    )
    ssh_ok(fleet, "host2", "sysrc -x nfs_server_enable; service nfsd onestop")
    out = ssh_ok(fleet, "host2", "service nfsd onestart; service nfsd onestatus")
    assert out.startswith("Starting nfsd.\nnfsd is running as pid ")
    # daemon(8): detached from the session, pidfile while it runs, output to the log.
    ssh_ok(
        fleet,
        "host2",
        "daemon -f -p /var/run/job.pid -o /var/log/job.log sh -c 'sleep 1.5; echo finished'",
    )
    assert (
        ssh_ok(fleet, "host2", "pgrep -F /var/run/job.pid >/dev/null && echo running")
        == "running\n"
    )
    deadline = time.monotonic() + 10
    while fleet.read_file("host2", "/var/log/job.log") != "finished\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert fleet.ssh("host2", "test -e /var/run/job.pid").returncode == 1
    assert fleet.count("host2", "reload-mountd") == 1


def test_openssh_config_works_from_the_shell(fleet: SimFleet) -> None:
    done = subprocess.run(
        ["ssh", "-F", str(fleet.ssh_config), "host2", "uname -n"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout == "host2\n"
    assert Path(fleet.client_key).stat().st_mode & 0o077 == 0


def test_fstab_nfs_lines_are_mounted_at_boot(fleet: SimFleet) -> None:
    ssh_ok(
        fleet,
        "host1",
        "echo '/usr/src -ro -network 127.0.0.0/8' > /etc/exports && "
        "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES && "
        "{ service mountd reload 2>/dev/null || service nfsd start; }",
    )
    ssh_ok(fleet, "host2", "printf 'host1:/usr/src\\t/usr/src\\tnfs\\tro\\t0\\t0\\n' >> /etc/fstab")
    since = time.time()
    assert fleet.ssh("host2", "shutdown -r now").returncode == 0
    fleet.wait_up("host2", 20, since=since)
    assert ssh_ok(
        fleet, "host2", "mount -p -t nfs; git -C /usr/src rev-parse --is-inside-work-tree"
    ) == ("host1:/usr/src\t\t/usr/src\t\tnfs\tro\t\t0 0\ntrue\n")
    ssh_ok(fleet, "host2", "umount /usr/src && sed -i '/nfs/d' /etc/fstab")
