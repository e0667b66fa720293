"""A simulated fleet answers like FreeBSD over real SSH, and leaves nothing behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.errors import SimError
from reconciler.sim import upstream
from reconciler.sim.fleet import SimFleet
from tests.conftest import fresh_subnet


def _namespaces_and_processes(directory: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_upstream_hashes_are_fixed() -> None:
    assert upstream.commits() == list(upstream.COMMITS)
    assert len(upstream.COMMITS) >= 4


def test_example_fleet_answers_like_freebsd(example_fleet: SimFleet) -> None:
    done = example_fleet.ssh("tester", "freebsd-version -ku; uname -i; bectl list -H")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["14.1-STABLE", "14.1-STABLE"]
    assert lines[2] == "GENERIC"
    name, active, mountpoint, _space, created = lines[3].split("\t")
    assert (name, active, mountpoint) == ("default", "NR", "/")
    assert len(created) == len("2024-06-04 12:00")


def test_down_leaves_nothing(sim_fleet_factory) -> None:  # type: ignore[no-untyped-def]
    fleet = sim_fleet_factory(hosts=2)
    ns_pids = [fleet.state(h)["ns_pid"] for h in fleet.hosts]
    ns = {Path(f"/proc/{p}/ns/mnt").resolve() for p in ns_pids}
    assert all(isinstance(p, int) for p in ns_pids)
    assert fleet.ssh("host1", "sysctl -n kern.bootfile").stdout == "/boot/kernel/kernel\n"
    fleet.down()
    assert not _namespaces_and_processes(fleet.directory)
    assert not any(Path(f"/proc/{p}").exists() for p in ns_pids)
    assert ns  # the namespaces were real while up
    assert str(fleet.directory) not in Path("/proc/self/mountinfo").read_text()


def test_a_fleet_dies_with_its_owner(tmp_path: Path) -> None:
    """A killed test run leaves nothing behind: the supervisor watches its owner."""
    directory = tmp_path / "owned"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from reconciler.sim.fleet import SimFleet\n"
        "from reconciler.sim.subnets import reserve_subnet\n"
        f"SimFleet.up(Path({str(directory)!r}), hosts=1, subnet=reserve_subnet(),\n"
        "             boot_seconds=0.2)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "up\n"
        fleet = SimFleet.attach(directory)
        ns_pid = fleet.state("host1")["ns_pid"]
        assert fleet.running() and Path(f"/proc/{ns_pid}").exists()
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 10
    while fleet.running() or _namespaces_and_processes(directory):
        assert time.monotonic() < deadline, _namespaces_and_processes(directory)
        time.sleep(0.1)
    assert not Path(f"/proc/{ns_pid}").exists()


def test_a_host_whose_sshd_cannot_start_is_reported(tmp_path: Path) -> None:
    subnet = fresh_subnet()
    # Something else holds the host's address:port, bound but not listening: `fleet up`'s
    # check for listeners cannot see it, so it is the host's sshd that fails to bind.
    with socket.socket() as squatter:
        squatter.bind((f"{subnet}.101", 22))
        started = time.monotonic()
        with pytest.raises(SimError, match=r"hosts did not start: host1; host1's console: .*"):
            SimFleet.up(tmp_path / "f", hosts=1, subnet=subnet, boot_seconds=0.1)
        assert time.monotonic() - started < 20
    assert not _namespaces_and_processes(tmp_path / "f")
