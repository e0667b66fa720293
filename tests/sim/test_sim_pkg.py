"""The simulated pkg(7) and pkg(8) against repositories the simulated poudriere built, over SSH.

host1 builds two repositories (the ports tree at its middle and newest
commit) and exports /usr/obj; host2 (ZFS, boot environments) and host3
(UFS) mount it read-only at the same path, as the set's hosts do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok
from tests.sim.packages_helpers import bulk, checkout_ports, setup_poudriere

OBJ = "/usr/obj/pk1"
JAIL = "rcpk1"
ALL = [
    "www/nginx",
    "security/sudo",
    "devel/py-six@py311",
    "sysutils/tmux",
    "databases/postgresql16-server",
]
OLD, NEW = "/usr/obj/packages/old/repo", "/usr/obj/packages/new/repo"
CONF = "/usr/local/etc/pkg/repos/reconciler.conf"
MOUNTD = (  # mountd loads /etc/exports (reconciler/sim/exports.py)
    "sysrc -q rpcbind_enable=YES mountd_enable=YES nfs_server_enable=YES >/dev/null; "
    "service mountd reload 2>/dev/null || service nfsd start >/dev/null"
)


def repo_conf(url_path: str) -> str:
    return f'reconciler: {{\n  url: "file://{url_path}",\n  enabled: yes,\n  priority: 10\n}}\n'


def write(fleet: SimFleet, host: str, path: str, text: str) -> None:
    ssh_ok(fleet, host, f"mkdir -p {path.rsplit('/', 1)[0]} && cat > {path} <<'EOF'\n{text}EOF")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    directory = tmp_path_factory.mktemp("sim-pkg") / "fleet"
    fleet = SimFleet.up(directory, hosts=3, ufs=("host3",), subnet=fresh_subnet(), **FAST)
    try:
        setup_poudriere(fleet, "host1", OBJ, JAIL)
        for index, name in ((1, "old"), (2, "new")):
            checkout_ports(fleet, "host1", index)
            repo = bulk(fleet, "host1", JAIL, name, ALL)
            ssh_ok(
                fleet,
                "host1",
                f"mkdir -p /usr/obj/packages/{name} && ln -s {repo} /usr/obj/packages/{name}/repo",
            )
        clients = " ".join(fleet.address(h) for h in ("host2", "host3"))
        ssh_ok(fleet, "host1", f"echo '/usr/obj -ro -maproot=root {clients}' > /etc/exports")
        ssh_ok(fleet, "host1", MOUNTD)
        for host in ("host2", "host3"):
            ssh_ok(fleet, host, f"mount -t nfs -o ro {fleet.address('host1')}:/usr/obj /usr/obj")
            write(fleet, host, CONF, repo_conf(OLD))
        yield fleet
    finally:
        fleet.down()


def bootstrapped(fleet: SimFleet, host: str) -> None:
    if fleet.ssh(host, "pkg -N").returncode != 0:
        ssh_ok(fleet, host, f"pkg add {OLD}/Latest/pkg.pkg")


def test_bootstrap_from_the_sets_repository(fleet: SimFleet) -> None:
    done = fleet.ssh("host3", "pkg -N")
    assert (done.returncode, done.stderr) == (1, "pkg: pkg is not installed\n")
    done = fleet.ssh("host3", "pkg install -y www/nginx")
    assert done.returncode == 1
    assert (
        "Please set ASSUME_ALWAYS_YES=yes environment variable to be able to bootstrap"
        in done.stderr
    )
    out = ssh_ok(fleet, "host3", f"pkg add {OLD}/Latest/pkg.pkg")
    assert out == "[1/1] Installing pkg-1.21.3...\n[1/1] Extracting pkg-1.21.3: 100%\n"
    done = fleet.ssh("host3", "pkg -N; pkg -v; pkg query '%n %v %a %R'")
    assert done.stderr == "pkg: 1 packages installed\n"
    assert done.stdout == "1.21.3\npkg 1.21.3 0 unknown-repository\n"
    assert fleet.read_file("host3", "/var/db/pkg/local.sqlite") is not None
    assert "bootstrapped at /usr/local/sbin/pkg" in ssh_ok(fleet, "host3", "pkg bootstrap")


def test_install_query_info_and_the_unreachable_stock_repository(fleet: SimFleet) -> None:
    bootstrapped(fleet, "host3")
    done = fleet.ssh("host3", "pkg install -y www/nginx")
    assert done.returncode == 1
    assert "Unable to update repository FreeBSD" in done.stdout
    assert (
        "pkg: pkg+http://pkg.FreeBSD.org/${ABI}/quarterly/meta.conf: No address record"
        in done.stderr
    )
    out = ssh_ok(fleet, "host3", "pkg install -y -r reconciler www/nginx devel/py-six@py311")
    assert out.startswith(
        "Updating reconciler repository catalogue...\nreconciler repository is up to date.\n"
        "All repositories are up to date.\nChecking integrity... done (0 conflicting)\n"
        "The following 3 package(s) will be affected (of 0 checked):\n\n"
        "New packages to be INSTALLED:\n\tpcre2: 10.43 [reconciler]\n"
        "\tnginx: 1.26.2,3 [reconciler]\n"
        "\tpy311-six: 1.16.0 [reconciler]\n\nNumber of packages to be installed: 3\n"
    )
    assert "[1/3] Installing pcre2-10.43...\n[1/3] Extracting pcre2-10.43: 100%\n" in out
    assert out.endswith("[3/3] Extracting py311-six-1.16.0: 100%\n")
    assert ssh_ok(fleet, "host3", "pkg query '%o %v %n %a' | sort") == (
        "devel/pcre2 10.43 pcre2 1\ndevel/py-six 1.16.0 py311-six 0\n"
        "ports-mgmt/pkg 1.21.3 pkg 0\nwww/nginx 1.26.2,3 nginx 0\n"
    )
    assert ssh_ok(fleet, "host3", "pkg query '%At=%Av' devel/py-six@py311") == (
        "flavor=py311\nrepository=reconciler\n"
    )
    assert ssh_ok(fleet, "host3", "pkg query '%dn-%dv %?r' nginx") == "pcre2-10.43 0\n"
    assert ssh_ok(fleet, "host3", "/usr/local/sbin/nginx") == "nginx 1.26.2,3\n"
    assert ssh_ok(fleet, "host3", "pkg info -o nginx").split() == ["nginx-1.26.2,3", "www/nginx"]
    assert fleet.ssh("host3", "pkg query '%n' www/nope").returncode == 1
    again = ssh_ok(fleet, "host3", "pkg install -y -r reconciler www/nginx")
    assert again.endswith("The most recent versions of packages are already installed\n")
    # The config may turn the stock repository off: then a plain install works too.
    write(fleet, "host3", "/usr/local/etc/pkg/repos/FreeBSD.conf", "FreeBSD: { enabled: no }\n")
    try:
        assert "Installing sudo-1.9.15p5" in ssh_ok(fleet, "host3", "pkg install -y security/sudo")
    finally:
        ssh_ok(fleet, "host3", "rm /usr/local/etc/pkg/repos/FreeBSD.conf")
    done = fleet.ssh("host3", "pkg install -y -r reconciler www/apache24")
    assert done.returncode == 1 and (
        "No packages available to install matching 'www/apache24' have been found" in done.stderr
    )


def test_upgrade_delete_and_automatic_packages(fleet: SimFleet) -> None:
    bootstrapped(fleet, "host3")
    ssh_ok(fleet, "host3", "pkg install -y -r reconciler www/nginx sysutils/tmux")
    write(fleet, "host3", CONF, repo_conf(NEW))
    try:
        out = ssh_ok(fleet, "host3", "pkg upgrade -y -r reconciler")
        assert "Installed packages to be UPGRADED:\n" in out
        assert (
            "\tpcre2: 10.43 -> 10.44 [reconciler]\n" in out
            and "\ttmux: 3.4 -> 3.5a [reconciler]\n" in out
        )
        assert "Upgrading tmux from 3.4 to 3.5a..." in out
        assert ssh_ok(fleet, "host3", "pkg query '%v' sysutils/tmux") == "3.5a\n"
        assert ssh_ok(fleet, "host3", "pkg upgrade -y -r reconciler").endswith(
            "Your packages are up to date.\n"
        )
    finally:
        write(fleet, "host3", CONF, repo_conf(OLD))
    # Deleting a dependency takes what needs it along, unless -f.
    preview = ssh_ok(fleet, "host3", "pkg delete -n devel/pcre2")
    assert "Installed packages to be REMOVED:\n\tnginx: 1.26.2,3\n\tpcre2: 10.44\n" in preview
    assert ssh_ok(fleet, "host3", "pkg query '%?r' devel/pcre2") == "1\n"
    # Marked automatic, a package goes with autoremove once nothing needs it.
    ssh_ok(fleet, "host3", "pkg set -y -A 1 www/nginx")
    assert ssh_ok(fleet, "host3", "pkg query '%a' www/nginx") == "1\n"
    out = ssh_ok(fleet, "host3", "pkg autoremove -y")
    assert "Deinstalling nginx-1.26.2,3..." in out
    assert fleet.read_file("host3", "/usr/local/sbin/nginx") is None
    out = ssh_ok(fleet, "host3", "pkg autoremove -y")
    assert "Deinstalling pcre2-10.44..." in out
    out = ssh_ok(fleet, "host3", "pkg delete -y sysutils/tmux")
    assert "[1/1] Deinstalling tmux-3.5a..." in out
    done = fleet.ssh("host3", "pkg delete -y sysutils/tmux")
    assert (done.returncode, done.stderr) == (
        1,
        "pkg: No packages matched for pattern 'sysutils/tmux'\n",
    )


def test_c_installs_into_a_mounted_be_and_r_reads_the_running_systems_repositories(
    fleet: SimFleet,
) -> None:
    bootstrapped(fleet, "host2")
    mnt = ssh_ok(fleet, "host2", "bectl create rc-pkgtest && bectl mount rc-pkgtest").strip()
    try:
        write(fleet, "host2", f"{mnt}{CONF}", repo_conf(NEW))  # the new BE's repository
        # Without the repository inside the chroot, pkg -c cannot see it.
        done = fleet.ssh("host2", f"pkg -c {mnt} install -y -r reconciler security/sudo")
        assert done.returncode == 1
        assert f"pkg: file://{NEW}/meta.conf: No such file or directory" in done.stderr
        ssh_ok(
            fleet,
            "host2",
            f"mkdir -p {mnt}/usr/obj {mnt}/dev && mount -t nullfs -o ro /usr/obj {mnt}/usr/obj && "
            f"mount -t devfs devfs {mnt}/dev",
        )
        out = ssh_ok(
            fleet,
            "host2",
            f"pkg -c {mnt} install -y -r reconciler security/sudo databases/postgresql16-server",
        )
        assert "Installing sudo-1.9.16p2..." in out  # from the new repository, as the BE says
        assert "Creating user 'postgres' with uid '770'" in out  # the pre-install script ran
        assert ssh_ok(fleet, "host2", f"pkg -c {mnt} query '%n %v' | sort") == (
            "pkg 1.21.3\npostgresql16-server 16.4\nsudo 1.9.16p2\n"
        )
        passwd = fleet.read_file("host2", "/etc/master.passwd") or ""
        be_passwd = ssh_ok(fleet, "host2", f"cat {mnt}/etc/master.passwd")
        assert "postgres:*:770:770:" in be_passwd and "postgres:" not in passwd
        assert ssh_ok(fleet, "host2", "pkg query '%n'") == "pkg\n"  # the running system: untouched
        assert fleet.read_file("host2", "/usr/local/bin/sudo") is None
        # -r: the BE's database, but the running system's repository files (the old one).
        out = ssh_ok(fleet, "host2", f"pkg -r {mnt} install -y -r reconciler sysutils/tmux")
        assert "Installing tmux-3.4..." in out
        assert ssh_ok(fleet, "host2", f"pkg -r {mnt} query '%v' sysutils/tmux") == "3.4\n"
        assert fleet.ssh("host2", "pkg -c / -r / query %n").returncode == 1
    finally:
        fleet.ssh("host2", f"umount {mnt}/dev; umount {mnt}/usr/obj")
        ssh_ok(fleet, "host2", "bectl umount rc-pkgtest && bectl destroy -F rc-pkgtest")


def test_a_package_that_fails_to_install_midway_leaves_the_ones_before(fleet: SimFleet) -> None:
    bootstrapped(fleet, "host3")
    fleet.set_fault("host3", "pkg-install-fails", "www/nginx")
    try:
        done = fleet.ssh("host3", "pkg install -y -r reconciler www/nginx")
    finally:
        fleet.clear_fault("host3", "pkg-install-fails")
    assert done.returncode == 1
    assert "[1/2] Extracting pcre2-10.43: 100%\n[2/2] Installing nginx-1.26.2,3...\n" in done.stdout
    assert "[2/2] Extracting nginx" not in done.stdout
    assert done.stderr.startswith("pkg: Failed to write /usr/local/etc/")
    names = set(ssh_ok(fleet, "host3", "pkg query '%n'").split())
    assert "pcre2" in names and "nginx" not in names  # pkg is not transactional across packages
    out = ssh_ok(fleet, "host3", "pkg install -y -r reconciler www/nginx")
    assert "New packages to be INSTALLED:\n\tnginx: 1.26.2,3 [reconciler]\n\n" in out
    ssh_ok(fleet, "host3", "pkg delete -y www/nginx devel/pcre2")
