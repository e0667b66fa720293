"""The simulated ports upstream and poudriere(8), driven through real SSH.

One module-scoped fleet (host1: src host and build host; host2: a client);
each test brings about the state it needs.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator

import pytest

from reconciler.sim import pkgfile, portstree, upstream
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok
from tests.sim.packages_helpers import (
    DATA,
    ETC,
    POUDRIERE,
    checkout_ports,
    setup_poudriere,
)

OBJ = "/usr/obj/pb1"
JAIL = "rcpb1"
MOUNTD = (  # mountd loads /etc/exports (reconciler/sim/exports.py)
    "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES >/dev/null; "
    "service mountd reload 2>/dev/null || service nfsd start >/dev/null"
)
SUMMARY = re.compile(
    r"^\[\d\d:\d\d:\d\d\] \[(?P<master>[^]]+)\] \[[^]]+\] \[(?P<status>\w+)\] "
    r"Time: \d\d:\d\d:\d\d\n"
    r" {11}Queued: (?P<queued>\d+) Inspected: 0 Ignored: 0 Built: (?P<built>\d+) "
    r"Failed: (?P<failed>\d+) Skipped: (?P<skipped>\d+) Fetched: 0 Remaining: (?P<left>\d+)$",
    re.M,
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-poudriere") / "fleet"
    fleet = SimFleet.up(directory, hosts=2, subnet=fresh_subnet(), **FAST)
    try:
        yield fleet
    finally:
        fleet.down()


def test_ports_upstream_hashes_are_fixed() -> None:
    assert portstree.commits() == list(portstree.COMMITS)


def test_ports_tree_on_the_src_host_follows_the_upstream_and_is_shared(fleet: SimFleet) -> None:
    out = ssh_ok(
        fleet,
        "host1",
        "git -C /usr/ports rev-parse HEAD; git -C /usr/ports config remote.origin.url; "
        "git ls-remote https://git.freebsd.org/ports.git main; mount -p | grep ports",
    )
    lines = out.splitlines()
    assert lines[0] == portstree.COMMITS[0]  # the src host starts on the oldest
    assert lines[1] == portstree.URL  # the real URL; git's insteadOf reaches the simulated one
    assert lines[2] == f"{portstree.COMMITS[-1]}\trefs/heads/main"
    assert lines[3] == "zroot/usr/ports\t\t/usr/ports\t\tzfs\trw,nosuid,nfsv4acls \t0 0"
    checkout_ports(fleet, "host1", 1)
    nginx = ssh_ok(fleet, "host1", "cat /usr/ports/www/nginx/Makefile")
    assert "PORTVERSION=\t1.26.2\nPORTEPOCH=\t3\n" in nginx
    assert ssh_ok(fleet, "host2", "ls -A /usr/ports") == ""
    ssh_ok(
        fleet,
        "host1",
        f"echo '/usr/ports -ro -maproot=root {fleet.address('host2')}' > /etc/exports; {MOUNTD}",
    )
    ssh_ok(fleet, "host2", f"mount -t nfs -o ro {fleet.address('host1')}:/usr/ports /usr/ports")
    try:
        assert ssh_ok(fleet, "host2", "cat /usr/ports/www/nginx/Makefile") == nginx
        assert fleet.ssh("host2", "touch /usr/ports/x").returncode != 0  # read-only
    finally:
        ssh_ok(fleet, "host2", "umount /usr/ports")


def test_jail_is_made_from_the_built_world_only(fleet: SimFleet) -> None:
    ssh_ok(fleet, "host1", "mkdir -p /usr/obj/other")
    done = fleet.ssh("host1", "poudriere -e /usr/obj/other jail -l")
    assert done.returncode == 1
    assert "Error: Unable to find a readable poudriere.conf in /usr/obj/other" in done.stderr
    setup_poudriere(fleet, "host1", OBJ, JAIL)
    listing = ssh_ok(fleet, "host1", f"{POUDRIERE} jail -l")
    assert listing.splitlines()[0].split() == [
        "JAILNAME",
        "VERSION",
        "OSVERSION",
        "ARCH",
        "METHOD",
        "TIMESTAMP",
        "PATH",
    ]
    row = next(line.split() for line in listing.splitlines() if line.startswith(JAIL))
    newest = upstream.STEPS[-1]  # the world build_world made: /usr/src at the newest commit
    assert row[1:5] == [f"{newest.revision}-STABLE", str(newest.osreldate), "amd64", "src=/usr/src"]
    assert row[-1] == f"/usr/obj/poudriere/jails/{JAIL}"
    # No finished build under this MAKEOBJDIRPREFIX: poudriere warns, fails, cleans up.
    done = fleet.ssh(
        "host1", f"env MAKEOBJDIRPREFIX=/usr/obj/none {POUDRIERE} jail -c -j rcnone -m src=/usr/src"
    )
    assert done.returncode == 1
    assert "Warning: No completed build found.  Did you mean to pass in -b?" in done.stderr
    assert "Error: Failed to 'make installworld'" in done.stderr
    assert "rcnone" not in ssh_ok(fleet, "host1", f"{POUDRIERE} jail -l -n -q")
    assert fleet.read_file("host1", "/usr/obj/poudriere/jails/rcnone/usr/src/Makefile") is None
    done = fleet.ssh(
        "host1", f"env MAKEOBJDIRPREFIX={OBJ} {POUDRIERE} jail -c -j {JAIL} -m src=/usr/src"
    )
    assert (done.returncode, done.stderr.split("] ", 1)[1]) == (
        2,
        f"Error: The jail {JAIL} already exists\n",
    )
    done = fleet.ssh("host1", f"{POUDRIERE} jail -c -j rc.1 -m src=/usr/src")
    assert done.returncode == 1 and "The jailname cannot contain a period (.)" in done.stderr
    # A second jail, then deleted: gone from the list and from the disk.
    ssh_ok(
        fleet, "host1", f"env MAKEOBJDIRPREFIX={OBJ} {POUDRIERE} jail -c -j rcdel -m src=/usr/src"
    )
    assert "Removing rcdel jail... done" in ssh_ok(
        fleet, "host1", f"{POUDRIERE} jail -d -j rcdel -y"
    )
    assert ssh_ok(fleet, "host1", f"{POUDRIERE} jail -l -n -q").split() == [JAIL]
    assert fleet.count("host1", "poudriere-jail") == 2


def test_ports_tree_registration(fleet: SimFleet) -> None:
    setup_poudriere(fleet, "host1", OBJ, JAIL)
    out = ssh_ok(fleet, "host1", f"{POUDRIERE} ports -l -q")
    assert out.split()[0:2] == ["reconciler", "null"] and out.split()[-1] == "/usr/ports"
    done = fleet.ssh("host1", f"{POUDRIERE} ports -c -p reconciler -m null -M /usr/ports")
    assert done.returncode == 2 and "The ports tree, reconciler, already exists" in done.stderr
    done = fleet.ssh("host1", f"{POUDRIERE} ports -c -p my-tree -m null -M /usr/ports")
    assert done.returncode == 1 and "The ports name should not contain a dash (-)" in done.stderr
    done = fleet.ssh("host1", f"{POUDRIERE} ports -c -p other -m null")
    assert done.returncode == 1 and "Must set -M to path of ports tree to use" in done.stderr


def _catalogue(fleet: SimFleet, repo: str) -> dict[str, dict[str, object]]:
    site = fleet.host_path("host1", f"{repo}/packagesite.pkg")
    with tarfile.open(site.resolve()) as archive:
        handle = archive.extractfile("packagesite.yaml")
        assert handle is not None
        lines = handle.read().decode().splitlines()
    return {e["name"]: e for e in map(json.loads, lines)}


def test_bulk_builds_a_repository_in_poudriere_layout(fleet: SimFleet) -> None:
    setup_poudriere(fleet, "host1", OBJ, JAIL)
    checkout_ports(fleet, "host1", 1)
    ssh_ok(
        fleet,
        "host1",
        f"mkdir -p {ETC}/poudriere.d/s1-options/www_nginx && "
        f"printf 'OPTIONS_FILE_SET+=MAIL\\nOPTIONS_FILE_UNSET+=HTTP2\\n' "
        f"> {ETC}/poudriere.d/s1-options/www_nginx/options && "
        "printf 'security_sudo_SET+=INSULTS\\nOPTIONS_UNSET+=NLS\\n' "
        f"> {ETC}/poudriere.d/s1-make.conf",
    )
    origins = ["www/nginx", "security/sudo", "devel/py-six@py311"]
    listing = "".join(f"{o}\n" for o in origins)
    ssh_ok(fleet, "host1", f"printf '# the set\\n{listing}' > /tmp/s1.list")
    out = ssh_ok(fleet, "host1", f"{POUDRIERE} bulk -j {JAIL} -p reconciler -z s1 -f /tmp/s1.list")
    repo = f"{DATA}/packages/{JAIL}-reconciler-s1"
    assert f"Copying /var/db/ports from: {ETC}/poudriere.d/s1-options" in out
    assert f"Appending to make.conf: {ETC}/poudriere.d/s1-make.conf" in out
    for origin, pkgname in (
        ("ports-mgmt/pkg", "pkg-1.21.3"),
        ("devel/pcre2", "pcre2-10.43"),
        ("www/nginx", "nginx-1.26.2,3"),
        ("security/sudo", "sudo-1.9.15p5"),
        ("devel/py-six@py311", "py311-six-1.16.0"),
    ):
        assert re.search(rf"\] \[01\] \[\d\d:\d\d:\d\d\] Building   {origin} \| {pkgname}\n", out)
        assert f"Finished   {origin} | {pkgname}: Success\n" in out
    summaries = [m.groupdict() for m in SUMMARY.finditer(out)]
    assert summaries[-1] == {
        "master": f"{JAIL}-reconciler-s1",
        "status": "done",
        "queued": "5",
        "built": "5",
        "failed": "0",
        "skipped": "0",
        "left": "0",
    }
    assert f"Committing packages to repository: {repo}/.real_" in out
    assert f"Logs: {DATA}/logs/bulk/{JAIL}-reconciler-s1/" in out
    # The repository: .latest -> .real_<epoch>, top-level names through .latest/.
    top = ssh_ok(
        fleet,
        "host1",
        f"cd {repo} && for f in .latest All Latest meta.conf packagesite.pkg; do readlink $f; done",
    )
    assert re.fullmatch(
        r"\.real_\d+\n\.latest/All\n\.latest/Latest\n\.latest/meta\.conf\n\.latest/packagesite\.pkg\n",
        top,
    )
    assert ssh_ok(fleet, "host1", f"readlink {repo}/Latest/pkg.pkg") == "../All/pkg-1.21.3.pkg\n"
    assert 'packing_format = "txz";' in (fleet.read_file("host1", f"{repo}/meta.conf") or "")
    catalogue = _catalogue(fleet, repo)
    assert sorted(catalogue) == ["nginx", "pcre2", "pkg", "py311-six", "sudo"]
    nginx = catalogue["nginx"]
    assert (nginx["origin"], nginx["version"], nginx["path"]) == (
        "www/nginx",
        "1.26.2,3",
        "All/nginx-1.26.2,3.pkg",
    )
    assert nginx["deps"] == {"pcre2": {"origin": "devel/pcre2", "version": "10.43"}}
    assert nginx["options"] == {
        "DEBUG": "off",
        "HTTP2": "off",
        "HTTP_SSL": "on",
        "IPV6": "on",
        "MAIL": "on",
    }
    assert catalogue["sudo"]["options"] == {"INSULTS": "on", "LDAP": "off", "NLS": "off"}
    assert catalogue["py311-six"]["annotations"] == {"flavor": "py311"}
    assert catalogue["nginx"]["abi"] == "FreeBSD:14:amd64"
    manifest, files = pkgfile.read_package(
        fleet.host_path("host1", f"{repo}/All/nginx-1.26.2,3.pkg").resolve()
    )
    assert sorted(files) == [
        "/usr/local/etc/nginx/nginx.conf-dist",
        "/usr/local/etc/rc.d/nginx",
        "/usr/local/sbin/nginx",
    ]
    assert manifest["files"]["/usr/local/sbin/nginx"].startswith("1$")
    # Built again with nothing changed: nothing is queued, the repository stays.
    again = ssh_ok(
        fleet, "host1", f"{POUDRIERE} bulk -j {JAIL} -p reconciler -z s1 -f /tmp/s1.list"
    )
    assert [m.group("queued") for m in SUMMARY.finditer(again)] == ["0", "0"]
    assert "Building " not in again
    assert sorted(_catalogue(fleet, repo)) == sorted(catalogue)


def test_a_failed_port_skips_its_dependents_and_commits_nothing(fleet: SimFleet) -> None:
    setup_poudriere(fleet, "host1", OBJ, JAIL)
    checkout_ports(fleet, "host1", 1)
    fleet.set_fault("host1", "port-build-fails", "devel/pcre2")
    ssh_ok(fleet, "host1", "printf 'www/nginx\\nsysutils/tmux\\n' > /tmp/s2.list")
    command = f"{POUDRIERE} bulk -j {JAIL} -p reconciler -z s2 -f /tmp/s2.list"
    try:
        done = fleet.ssh("host1", command)
    finally:
        fleet.clear_fault("host1", "port-build-fails")
    assert done.returncode == 2  # failed + skipped (bulk.sh's exit status)
    out = done.stdout
    assert "Finished   devel/pcre2 | pcre2-10.43: Failed: build\n" in out
    assert (
        "Skipping   www/nginx | nginx-1.26.2,3: Dependent port devel/pcre2 | pcre2-10.43 failed\n"
        in out
    )
    assert "Finished   sysutils/tmux | tmux-3.4: Success\n" in out
    assert "Failed ports: devel/pcre2:build\n" in out and "Skipped ports: www/nginx\n" in out
    assert [m.group("failed") for m in SUMMARY.finditer(out)][-1] == "1"
    assert (
        "Warning: Not committing, or publishing, packages to repository as failures" in done.stderr
    )
    repo = f"{DATA}/packages/{JAIL}-reconciler-s2"
    assert fleet.read_file("host1", f"{repo}/meta.conf") is None  # nothing published
    log = f"{DATA}/logs/bulk/{JAIL}-reconciler-s2/latest"
    assert (fleet.read_file("host1", f"{log}/.poudriere.ports.failed") or "").startswith(
        "devel/pcre2 pcre2-10.43 build"
    )
    assert "Killed" in (fleet.read_file("host1", f"{log}/logs/errors/pcre2-10.43.log") or "")
    # Fixed: the next bulk reuses what was built and commits a complete repository.
    again = fleet.ssh("host1", command)
    assert again.returncode == 0, again.stderr
    assert "Using packages from previously failed, or uncommitted, build" in again.stderr
    assert "Building   sysutils/tmux" not in again.stdout
    assert "Building   devel/pcre2 | pcre2-10.43" in again.stdout
    assert sorted(_catalogue(fleet, repo)) == ["nginx", "pcre2", "pkg", "tmux"]


def test_bulk_refuses_what_the_tree_does_not_have(fleet: SimFleet) -> None:
    setup_poudriere(fleet, "host1", OBJ, JAIL)
    for origin, message in (
        ("www/nope", "Error: Nonexistent origin listed: www/nope"),
        ("devel/py-six@py27", "Error: Invalid FLAVOR 'py27' for devel/py-six"),
    ):
        done = fleet.ssh("host1", f"{POUDRIERE} bulk -j {JAIL} -p reconciler -z s3 {origin}")
        assert done.returncode == 1, done.stdout
        assert message in done.stderr
    done = fleet.ssh("host1", f"{POUDRIERE} bulk -j nope -p reconciler -z s3 www/nginx")
    assert (done.returncode, "Error: No such jail: nope" in done.stderr) == (1, True)
    done = fleet.ssh("host1", f"{POUDRIERE} bulk -j {JAIL} -p nope www/nginx")
    assert (done.returncode, "Error: No such ports tree nope" in done.stderr) == (2, True)
