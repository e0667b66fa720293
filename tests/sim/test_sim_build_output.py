"""What the simulated build prints and records, as Makefile.inc1 and newvers.sh make it.

- buildworld: stage 2.1 only WITH_CLEAN (else ">>> Deleting stale dependencies..."),
  4.3 the lib32 shim libraries unless WITHOUT_LIB32, 4.4 everything, then the
  epilogue; buildkernel: 2.1 only WITH_CLEAN, "Kernel(s)  K" (BUILDKERNELS+=);
  ", make -jN" only with -j (Makefile.inc1 of the WITH_CLEAN era, Makefile.libcompat).
- the kernel's VCS word (sys/conf/newvers.sh): git's --short hash (core.abbrev),
  n<count> only when not shallow, <branch>- unless detached, -dirty, nothing at
  all without git on the build host; #N counts builds in the objdir.
- config(8) stops on an include it cannot open (usr.sbin/config/lang.l include()).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from reconciler.facts.versions import parse_uname_v, revision_matches
from reconciler.sim import kernel, upstream
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok

OBJ = "/usr/obj/b1"
NEWEST = upstream.COMMITS[-1]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-build") / "fleet"
    fleet = SimFleet.up(directory, hosts=2, no_git=("host2",), subnet=fresh_subnet(), **FAST)
    try:
        ssh_ok(
            fleet,
            "host1",
            f"git -C /usr/src fetch -q origin stable/14 && "
            f"git -C /usr/src checkout -q --detach {NEWEST}",
        )
        yield fleet
    finally:
        fleet.down()


def _stages(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(">>> ")]


def test_world_stages_incremental_with_lib32(fleet: SimFleet) -> None:
    out = ssh_ok(fleet, "host1", f"env MAKEOBJDIRPREFIX={OBJ} make -C /usr/src buildworld")
    stages = [s.split(" on ")[0] for s in _stages(out)]
    assert stages == [
        ">>> World build started",
        ">>> Rebuilding the temporary build tree",
        ">>> stage 1.1: legacy release compatibility shims",
        ">>> stage 1.2: bootstrap tools",
        ">>> Deleting stale dependencies...",
        ">>> stage 2.2: rebuilding the object tree",
        ">>> stage 2.3: build tools",
        ">>> stage 3: cross tools",
        ">>> stage 3.1: recording build metadata",
        ">>> stage 4.1: building includes",
        ">>> stage 4.2: building libraries",
        ">>> stage 4.3: building lib32 shim libraries",
        ">>> stage 4.4: building everything",
        ">>> World build completed",
        stages[-1],
    ]
    assert stages[-1].startswith(">>> World built in ") and stages[-1].endswith(", ncpu: 2")
    # the epilogue: an empty line and one rule before "completed", one rule after the time
    tail = out.rstrip("\n").splitlines()[-4:]
    assert tail[0] == "-" * 62 and tail[1].startswith(">>> World build completed on ")
    assert tail[2].startswith(">>> World built in ") and tail[3] == "-" * 62


def test_world_stages_clean_without_lib32(fleet: SimFleet) -> None:
    ssh_ok(fleet, "host1", "printf 'WITHOUT_LIB32=yes\\n' > /etc/src.conf")
    try:
        out = ssh_ok(
            fleet,
            "host1",
            f"env MAKEOBJDIRPREFIX={OBJ}-c make -C /usr/src -j 2 -DWITH_CLEAN buildworld",
        )
    finally:
        ssh_ok(fleet, "host1", "rm -f /etc/src.conf")
    stages = _stages(out)
    assert ">>> stage 2.1: cleaning up the object tree" in stages
    assert ">>> Deleting stale dependencies..." not in stages
    assert not any("lib32" in s for s in stages)
    assert stages[-1].endswith(", ncpu: 2, make -j2")


def test_kernel_stages_and_the_kernels_line(fleet: SimFleet) -> None:
    env = f"env MAKEOBJDIRPREFIX={OBJ}"
    out = ssh_ok(fleet, "host1", f"{env} make -C /usr/src buildkernel KERNCONF='GENERIC MINIMAL'")
    stages = _stages(out)
    assert ">>> stage 2.1: cleaning up the object tree" not in stages
    assert stages.count(">>> stage 1: configuring the kernel") == 2
    assert stages[-1].startswith(">>> Kernel(s)  GENERIC MINIMAL built in ")
    out = ssh_ok(fleet, "host1", f"{env} make -C /usr/src buildkernel -DWITH_CLEAN")
    assert ">>> stage 2.1: cleaning up the object tree" in _stages(out)


def test_config_refuses_an_include_it_cannot_open(fleet: SimFleet) -> None:
    conf = "/usr/src/sys/amd64/conf/BAD"
    ssh_ok(fleet, "host1", f"printf 'include GENERIC\\ninclude NOPE\\nident BAD\\n' > {conf}")
    try:
        done = fleet.ssh(
            "host1", f"env MAKEOBJDIRPREFIX={OBJ} make -C /usr/src buildkernel KERNCONF=BAD"
        )
    finally:
        ssh_ok(fleet, "host1", f"rm -f {conf}")
    assert done.returncode == 2
    assert f"config: {conf}:2: cannot open included file" in done.stderr


def _vcs(fleet: SimFleet, host: str, objdir: str, setup: str = "") -> dict[str, str]:
    ssh_ok(
        fleet,
        host,
        f"{setup}env MAKEOBJDIRPREFIX={objdir} make -C /usr/src buildkernel >/dev/null",
    )
    text = fleet.read_file(host, f"{objdir}/usr/src/amd64.amd64/sys/GENERIC/kernel") or ""
    return kernel.parse(text)


def test_newvers_forms(fleet: SimFleet) -> None:
    built = _vcs(fleet, "host1", f"{OBJ}-v")
    assert built["vcs"] == f"n5-{NEWEST[:12]}" and built["serial"] == "0"
    assert _vcs(fleet, "host1", f"{OBJ}-v")["serial"] == "1"  # newvers.sh's version file
    # git's abbreviation as the host configures it (FreeBSD's big repository gives 12)
    short = _vcs(fleet, "host1", f"{OBJ}-a", "git config --global core.abbrev 7 && ")
    ssh_ok(fleet, "host1", "git config --global --unset core.abbrev")
    assert short["vcs"] == f"n5-{NEWEST[:7]}"
    dirty = _vcs(fleet, "host1", f"{OBJ}-d", "echo local >> /usr/src/UPDATING && ")
    ssh_ok(fleet, "host1", "git -C /usr/src checkout -q -- UPDATING")
    assert dirty["vcs"] == f"n5-{NEWEST[:12]}-dirty"
    shallow = _vcs(
        fleet, "host1", f"{OBJ}-s", f"git -C /usr/src fetch -q --depth 1 origin {NEWEST} && "
    )
    ssh_ok(fleet, "host1", "git -C /usr/src fetch -q --unshallow origin")
    assert shallow["vcs"] == NEWEST[:12]
    branch = _vcs(fleet, "host1", f"{OBJ}-b", "git -C /usr/src checkout -q -b local && ")
    ssh_ok(fleet, "host1", f"git -C /usr/src checkout -q --detach {NEWEST}")
    assert branch["vcs"] == f"local-n5-{NEWEST[:12]}"
    for form in (built, short, dirty, shallow, branch):
        source = parse_uname_v(kernel.kern_version(form))
        assert source is not None and revision_matches(source.abbrev, NEWEST), form["vcs"]


def test_a_build_host_without_git_embeds_no_revision(fleet: SimFleet) -> None:
    """newvers.sh looks for git in /usr/bin and /usr/local/bin only."""
    assert fleet.ssh("host2", "test -x /usr/bin/git").returncode == 1
    client = fleet.address("host2")
    ssh_ok(
        fleet,
        "host1",
        f"echo '/usr/src -ro -maproot=root {client}' > /etc/exports && "
        "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES && "
        "service nfsd start >/dev/null",
    )
    ssh_ok(
        fleet, "host2", f"mount -t nfs -o ro,retrycnt=1 {fleet.address('host1')}:/usr/src /usr/src"
    )
    objdir = "/usr/obj/nogit"
    ssh_ok(
        fleet,
        "host2",
        f"export MAKEOBJDIRPREFIX={objdir}; make -C /usr/src buildkernel >/dev/null && "
        "make -C /usr/src installkernel >/dev/null",
    )
    since = time.time()
    assert fleet.ssh("host2", "shutdown -r now").returncode == 0
    fleet.wait_up("host2", 20, since=since)
    version = ssh_ok(fleet, "host2", "uname -v")
    assert version.startswith("FreeBSD 14.2-STABLE #0: ")
    assert parse_uname_v(version) is None
    assert f"root@host2:{objdir}/usr/src/amd64.amd64/sys/GENERIC" in version


def test_reproducible_build_drops_the_metadata_unless_modified(fleet: SimFleet) -> None:
    """kern.post.mk runs newvers.sh -R WITH_REPRODUCIBLE_BUILD: no #N, date, builder, objdir."""
    ssh_ok(fleet, "host1", "printf 'WITH_REPRODUCIBLE_BUILD=yes\\n' > /etc/src.conf")
    try:
        clean = _vcs(fleet, "host1", f"{OBJ}-r")
        modified = _vcs(fleet, "host1", f"{OBJ}-rm", "echo local >> /usr/src/UPDATING && ")
    finally:
        ssh_ok(fleet, "host1", "rm -f /etc/src.conf; git -C /usr/src checkout -q -- UPDATING")
    assert kernel.kern_version(clean) == f"FreeBSD 14.2-STABLE n5-{NEWEST[:12]} GENERIC\n"
    assert kernel.kern_version(modified).startswith(
        f"FreeBSD 14.2-STABLE #0 n5-{NEWEST[:12]}-dirty: "
    )
