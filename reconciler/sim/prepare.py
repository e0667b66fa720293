"""Lay out a fleet directory: keys, upstream, hosts with their first boot environment.

Pure file work; :mod:`reconciler.sim.fleet` checks prerequisites and starts
the supervisor. See :mod:`reconciler.sim.layout` for the directory layout.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from reconciler.errors import SimError
from reconciler.sim import hostkeys, kernconf, kernel, loader, portstree, rcsubr, state, upstream
from reconciler.sim.cmdscript import command_script as _command_script
from reconciler.sim.layout import BE_DIRS, NS_FLEET, FleetLayout
from reconciler.sim.spec import HostSpec, Timings

__all__ = ["COMMANDS", "HostSpec", "Timings", "prepare"]

#: FreeBSD command -> its path in a BE's upper /usr (merged-usr: /bin is /usr/bin).
COMMANDS = {
    "freebsd-version": "bin/freebsd-version",
    "uname": "bin/uname",
    "sysctl": "sbin/sysctl",
    "make": "bin/make",
    "bectl": "sbin/bectl",
    "etcupdate": "sbin/etcupdate",
    "shutdown": "sbin/shutdown",
    "reboot": "sbin/reboot",
    "mount": "sbin/mount",
    "umount": "sbin/umount",
    "service": "sbin/service",
    "sysrc": "sbin/sysrc",
    "daemon": "sbin/daemon",
    "pgrep": "bin/pgrep",
    "lockf": "bin/lockf",
    "fetch": "bin/fetch",
    "showmount": "bin/showmount",
    "df": "bin/df",
    "zfs": "sbin/zfs",
    # pkg(7), the bootstrapper in base; pkg(8) comes with the ports-mgmt/pkg package
    "pkg": "sbin/pkg",
    # ports-mgmt/poudriere, as a build host's admin installs it
    "poudriere": "local/bin/poudriere",
    "jail": "sbin/jail",
    "rcorder": "sbin/rcorder",
}

START_SCRIPT = r"""#!/bin/sh
# Boot one simulated host inside its fresh mount+pid namespace.
# $1 fleet dir  $2 host  $3 booted BE  $4 obj-in-BE (yes|no)
set -eu
M=/usr/bin/mount
dir=$1 host=$2 be=$3 objinbe=$4
$M -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/freebsd-sim /run/sshd
$M --bind "$dir" /run/freebsd-sim
printf '%s\n' "$host" > /run/freebsd-sim.host
h=/run/freebsd-sim/hosts/$host
b=$h/be/$be
for d in etc boot var root usr; do
    # The machine's own dirs, below every BE: what a mounted BE is overlaid on
    # too (bectl mount), so it shows the BE as a clone, not the running one.
    mkdir -p "/run/freebsd-base/$d"
    $M --bind "/$d" "/run/freebsd-base/$d"
    mkdir -p "$b/$d" "$b/.work/$d"
    $M -t overlay overlay -o "lowerdir=/$d,upperdir=$b/$d,workdir=$b/.work/$d" "/$d"
done
mkdir -p /usr/src /usr/obj /boot/efi
$M --bind "$h/datasets/usr-src" /usr/src
[ "$objinbe" = yes ] || $M --bind "$h/datasets/usr-obj" /usr/obj
# The EFI system partition: one FAT file system, the same whatever BE boots.
[ -d "$h/datasets/efi" ] && $M --bind "$h/datasets/efi" /boot/efi
mkdir -p /usr/ports
[ -d "$h/datasets/usr-ports" ] && $M --bind "$h/datasets/usr-ports" /usr/ports
echo 1 > /run/sshd.pid
# rc.d/mountcritremote mounts fstab's nfs lines at boot (nfs_client_enable or not).
if grep -qs '[[:space:]]nfs[[:space:]]' /etc/fstab; then
    /usr/sbin/mount -a -t nfs || echo "sim: mounting nfs file systems failed" >&2
fi
%RC%
if [ -e /usr/share/freebsd-sim/network-broken ]; then
    # The net-broken-after-boot fault: this world came up without a network.
    echo "sim: $host booted $be; its network is broken: no sshd" >&2
    exec sleep 2147483647
fi
exec /usr/sbin/sshd -D -e -f "$h/sshd_config"
""".replace("%RC%", rcsubr.START_RC)


FREEBSD_CONF = """#
# To disable this repository, instead of modifying or removing this file,
# create a /usr/local/etc/pkg/repos/FreeBSD.conf file:
#
#   mkdir -p /usr/local/etc/pkg/repos
#   echo "FreeBSD: { enabled: no }" > /usr/local/etc/pkg/repos/FreeBSD.conf
#

FreeBSD: {
  url: "pkg+http://pkg.FreeBSD.org/${ABI}/quarterly",
  mirror_type: "srv",
  signature_type: "fingerprints",
  fingerprints: "/usr/share/keys/pkg",
  enabled: yes
}
"""


def _sshd_config(layout: FleetLayout, spec: HostSpec) -> str:
    inside = FleetLayout(NS_FLEET)
    return (
        f"ListenAddress {spec.address}:{spec.port}\n"
        f"HostKey {inside.host(spec.name)}/ssh_host_ed25519_key\n"
        "PermitRootLogin prohibit-password\n"
        f"AuthorizedKeysFile {inside.authorized_keys}\n"
        "StrictModes no\nUsePAM no\nPidFile none\nUseDNS no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "MaxStartups 200:30:400\nMaxSessions 100\n"
        # INFO: one "Accepted publickey" line per login (SimFleet.accepts counts them).
        "LogLevel INFO\n"
        "Subsystem sftp internal-sftp\n"
    )


def _git(*args: str) -> str:
    return upstream._git(*args)


def _first_be(layout: FleetLayout, spec: HostSpec, commits: list[str], built: str) -> None:
    """The host's BE ``default``: commands, a kernel and world from the oldest commit, /etc."""
    be = layout.be(spec.name, "default")
    for d in BE_DIRS:
        (be / d).mkdir(parents=True, exist_ok=True)
        (be / ".work" / d).mkdir(parents=True, exist_ok=True)
    for name, rel in COMMANDS.items():
        path = be / "usr" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_command_script(name), encoding="utf-8")
        path.chmod(0o755)
    # The installed world and kernel: "built" from the oldest upstream commit.
    src = layout.root / "upstream" / "oldest"
    info = kernel.source_info(src, abbrev=12)
    world = be / kernel.WORLD_FILE
    world.parent.mkdir(parents=True, exist_ok=True)
    world.write_text(kernel.render(info, "FreeBSD world"), encoding="utf-8")
    objdir = f"/usr/obj/usr/src/amd64.amd64/sys/{spec.kernconf}"
    kern = info | {
        "ident": spec.kernconf,
        "built": built,
        "builder": f"root@{spec.name}",
        "objdir": objdir,
    }
    embedded = kernconf.conftxt(
        src / "sys/amd64/conf", spec.kernconf, text=spec.kernel_config or None
    )
    if embedded is not None:  # built with options INCLUDE_CONFIG_FILE: kern.conftxt
        kern["conftxt"] = kernconf.encode(embedded)
    kfile = be / kernel.KERNEL_FILE
    kfile.parent.mkdir(parents=True, exist_ok=True)
    kfile.write_text(kernel.render(kern, "FreeBSD kernel"), encoding="utf-8")
    # /etc: what the installer leaves, plus git's URL rewrite to the simulated upstream.
    etc = be / "etc"
    inside = FleetLayout(NS_FLEET)
    (etc / "gitconfig").write_text(
        f'[url "file://{inside.upstream}"]\n\tinsteadOf = {upstream.URL}\n'
        f'[url "file://{inside.ports_upstream}"]\n\tinsteadOf = {portstree.URL}\n'
        "[safe]\n\tdirectory = *\n"
        # git's automatic abbreviation grows with the repository: 12 digits on
        # FreeBSD's src.git, 7 on the simulator's small one. This stands in for
        # the size (newvers.sh uses git's default); change it to see other lengths.
        "[core]\n\tabbrev = 12\n",
        encoding="utf-8",
    )
    # usr.sbin/pkg/FreeBSD.conf.quarterly, as base installs it (no network here).
    (etc / "pkg").mkdir(parents=True, exist_ok=True)
    (etc / "pkg" / "FreeBSD.conf").write_text(FREEBSD_CONF, encoding="utf-8")
    (etc / "rc.conf").write_text(
        f'hostname="{spec.name}"\nsshd_enable="YES"\nzfs_enable="{"NO" if spec.ufs else "YES"}"\n',
        encoding="utf-8",
    )
    # rc(8)'s library, and the world's sshd_config and host key (smoke tests run sshd -t).
    (etc / "rc.subr").write_text(rcsubr.RC_SUBR, encoding="utf-8")
    (etc / "ssh").mkdir(exist_ok=True)
    (etc / "ssh" / "sshd_config").write_text(rcsubr.SSHD_CONFIG, encoding="utf-8")
    key = etc / "ssh" / "ssh_host_ed25519_key"
    key.write_bytes(hostkeys.private_key_openssh(spec.name))
    key.chmod(0o600)
    (etc / "fstab").write_text(
        "# Device\tMountpoint\tFStype\tOptions\tDump\tPass#\n"
        + ("/dev/ada0p2\t/\t\tufs\trw\t1\t1\n" if spec.ufs else "")
        + "/dev/gpt/efiboot0\t/boot/efi\tmsdosfs\trw\t2\t2\n",
        encoding="utf-8",
    )
    # The world's loader, and bsdinstall's copies of it on the ESP (bootconfig).
    efi = loader.image(loader.date(1717502400), f"root@{spec.name}")
    (be / loader.WORLD_LOADER).write_bytes(efi)
    for rel in loader.ESP_LOADERS:
        path = layout.dataset(spec.name, "efi") / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(efi)
    # root's own shell start-up, hiding this machine's (which may be slow or
    # personal): a FreeBSD root PATH, where /sbin's commands win over /bin's.
    profile = (
        "# root's shell start-up on a simulated FreeBSD host\n"
        "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin\n"
        "export PATH\n"
    )
    for dotfile in (".bashrc", ".profile", ".shrc"):
        (be / "root" / dotfile).write_text(profile, encoding="utf-8")
    if spec.no_git:
        # No git package: an overlay whiteout hides this machine's /usr/bin/git.
        whiteout = be / "usr" / "bin" / "git"
        whiteout.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(whiteout, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (be / "root" / ".gitconfig").write_text("", encoding="utf-8")
    # etcupdate's record of the stock /etc the installed world came with.
    current = be / "var/db/etcupdate/current"
    for stock in sorted((src / "etc").rglob("*")):
        if stock.is_file():
            rel_etc = stock.relative_to(src)
            (current / rel_etc).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stock, current / rel_etc)
            live = etc / rel_etc.relative_to("etc")
            if not live.exists():
                live.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(stock, live)


def prepare(
    directory: Path, specs: list[HostSpec], timings: Timings, src_host: str | None = None
) -> FleetLayout:
    """Write everything ``sim up`` needs under ``directory`` (must be empty or absent)."""
    layout = FleetLayout(directory)
    if directory.exists() and any(directory.iterdir()):
        raise SimError(f"{directory}: not empty (a fleet directory must be new; 'sim down' first?)")
    directory.mkdir(parents=True, exist_ok=True)
    commits = upstream.create(layout.upstream)
    ports_commits = portstree.create(layout.ports_upstream)
    oldest = layout.root / "upstream" / "oldest"
    _git("clone", "-q", "--no-checkout", str(layout.upstream), str(oldest))
    _git("-C", str(oldest), "checkout", "-q", "--detach", commits[0])
    built = time.strftime(kernel.DATE_FORMAT, time.gmtime(1717502400))
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "reconciler-sim-client",
            "-f",
            str(layout.client_key),
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy(layout.client_key.with_suffix(".pub"), layout.authorized_keys)
    known, config = [], []
    for spec in specs:
        known.append(hostkeys.known_hosts_line(spec.name, spec.address, spec.port))
        config.append(
            f"Host {spec.name}\n  HostName {spec.address}\n  Port {spec.port}\n  User root\n"
            f"  IdentityFile {layout.client_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {layout.known_hosts}\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n  ConnectTimeout 5\n  LogLevel ERROR\n"
        )
    layout.known_hosts.write_text("\n".join(known) + "\n", encoding="utf-8")
    layout.ssh_config.write_text("\n".join(config), encoding="utf-8")
    (layout.root / "start.sh").write_text(START_SCRIPT, encoding="utf-8")
    src = src_host or specs[0].name
    for spec in specs:
        host = layout.host(spec.name)
        (host / "requests").mkdir(parents=True)
        key = host / "ssh_host_ed25519_key"
        key.write_bytes(hostkeys.private_key_openssh(spec.name))
        key.chmod(0o600)
        (host / "sshd_config").write_text(_sshd_config(layout, spec), encoding="utf-8")
        for dataset in ("usr-src", "usr-obj", "usr-ports", "efi"):
            layout.dataset(spec.name, dataset).mkdir(parents=True)
        _first_be(layout, spec, commits, built)
        if spec.name == src:
            tree = layout.dataset(spec.name, "usr-src")
            _git("clone", "-q", "--no-checkout", str(layout.upstream), str(tree))
            _git("-C", str(tree), "remote", "set-url", "origin", upstream.URL)
            _git("-C", str(tree), "checkout", "-q", "--detach", commits[0])
            ports = layout.dataset(spec.name, "usr-ports")
            _git("clone", "-q", "--no-checkout", str(layout.ports_upstream), str(ports))
            _git("-C", str(ports), "remote", "set-url", "origin", portstree.URL)
            _git("-C", str(ports), "checkout", "-q", "--detach", ports_commits[0])
        kern = kernel.read(layout.be(spec.name, "default") / kernel.KERNEL_FILE) or {}
        state.write_json(
            host / "state.json",
            {
                "name": spec.name,
                "address": spec.address,
                "port": spec.port,
                "power": "off",
                "booted_be": "" if spec.ufs else "default",
                "active_be": "" if spec.ufs else "default",
                "oneshot_be": None,
                "bes": {}
                if spec.ufs
                else {"default": {"created": time.strftime("%Y-%m-%d %H:%M"), "mounted": None}},
                "running_kernel": kern,
                "last_good_kernel": kern,
                "bootfile": "/boot/kernel/kernel",
                "ufs": spec.ufs,
                "obj_in_be": spec.obj_in_be,
                "ns_pid": None,
            },
        )
        state.write_json(host / "faults.json", {})
        state.write_json(host / "counters.json", {})
    shutil.rmtree(oldest)
    state.write_json(
        layout.fleet_json,
        {
            "hosts": [s._asdict() for s in specs],
            "src_host": src,
            "timings": timings._asdict(),
            "commits": commits,
            "ports_commits": ports_commits,
            "id": secrets.token_hex(8),
            "created": time.time(),
            "python": sys.executable,
            "pid_of_creator": os.getpid(),
        },
    )
    return layout
