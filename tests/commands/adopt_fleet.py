"""A simulated fleet that was set up by hand, for ``reconciler init`` to adopt.

Two groups of hosts that a person would call two build sets:

- ``builder``, ``web1``, ``web2``: ZFS with boot environments, the same
  src.conf and make.conf apart from KERNCONF; custom kernels BUILDER and WEB
  built with ``options INCLUDE_CONFIG_FILE``; ``builder`` keeps /usr/src (a git
  checkout, detached at the oldest upstream commit, as the simulator leaves it);
- ``db1``, ``db2``: UFS (no boot environments), GENERIC, another src.conf, no
  make.conf on db1 and an empty one on db2.

Every kernel runs the oldest upstream commit (``reconciler.sim.upstream``).
The fleet is started from a throw-away "blueprint" repo only because that is
how the simulator learns a topology; ``init`` never sees it.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from reconciler.sim import hostkeys
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet

WEB_MAKE_CONF = "CPUTYPE?=x86-64-v2\nDEFAULT_VERSIONS+=ssl=base\n"
WEB_SRC_CONF = "WITHOUT_LIB32=yes\nWITHOUT_TESTS=yes\n"
DB_SRC_CONF = "WITHOUT_TESTS=yes\nWITHOUT_BLUETOOTH=yes\n"

KERNELS = {
    "BUILDER": "include GENERIC\nident   BUILDER\n\noptions INCLUDE_CONFIG_FILE\nnooptions ZFS\n",
    "WEB": "include GENERIC\nident   WEB\n\noptions INCLUDE_CONFIG_FILE\n"
    "options ACCEPT_FILTER_HTTP\n",
}

HOSTS = {  # name -> (last address byte, kernconf, build set of the blueprint)
    "builder": (11, "BUILDER", "web"),
    "web1": (13, "WEB", "web"),
    "web2": (14, "WEB", "web"),
    "db1": (21, "GENERIC", "db"),
    "db2": (22, "GENERIC", "db"),
}


def blueprint(directory: Path, subnet: str) -> Path:
    """A config repo that only tells the simulator which hosts to start, and how."""
    (directory / "kernels").mkdir(parents=True)
    for ident, text in KERNELS.items():
        (directory / "kernels" / ident).write_text(text)
    (directory / "fleet.yaml").write_text(
        "source:\n  url: https://git.freebsd.org/src.git\n  branch: stable/14\n"
        f"  revision: {'0' * 40}\nsrc_host: builder\n"
    )
    for name, install in (("web", "boot-environment"), ("db", "in-place")):
        lines = ["arch: amd64", f"build_host: {'builder' if name == 'web' else 'db1'}"]
        lines += ["jobs: 1", "hosts:"]
        for host, (byte, kernconf, where) in HOSTS.items():
            if where == name:
                stage = ", stage: test" if host in ("web1", "db2") else ""
                lines.append(f"  {host}: {{address: {subnet}.{byte}, kernconf: {kernconf}{stage}}}")
        lines += ["rollout:", f"  install: {install}"]
        (directory / "buildsets" / name).mkdir(parents=True)
        (directory / "buildsets" / name / "buildset.yaml").write_text("\n".join(lines) + "\n")
        (directory / "buildsets" / name / "make.conf").write_text("")
        (directory / "buildsets" / name / "src.conf").write_text("")
    (directory / "known_hosts").write_text(
        "".join(
            hostkeys.known_hosts_line(h, f"{subnet}.{byte}") + "\n"
            for h, (byte, _, _) in HOSTS.items()
        )
    )
    return directory


def _put(fleet: SimFleet, host: str, path: str, text: str | None) -> None:
    command = f"rm -f {path}" if text is None else f"printf %s {shlex.quote(text)} > {path}"
    done = fleet.ssh(host, command)
    assert done.returncode == 0, done.stderr


def start(base: Path) -> SimFleet:
    """The hand-made fleet, running (``SimFleet.down`` stops it)."""
    fleet = SimFleet.up(base / "fleet", repo=blueprint(base / "blueprint", fresh_subnet()), **FAST)
    kernconfs = {"builder": "BUILDER WEB", "web1": "WEB", "web2": "WEB"}
    for host, kernconf in kernconfs.items():
        # KERNCONF in the middle, as people write it; the reconciler owns that line.
        make_conf = WEB_MAKE_CONF.replace("\n", f"\nKERNCONF={kernconf}\n", 1)
        _put(fleet, host, "/etc/make.conf", make_conf)
        _put(fleet, host, "/etc/src.conf", WEB_SRC_CONF)
    _put(fleet, "db1", "/etc/make.conf", None)
    _put(fleet, "db2", "/etc/make.conf", "")
    for host in ("db1", "db2"):
        _put(fleet, host, "/etc/src.conf", DB_SRC_CONF)
    return fleet


def host_args(fleet: SimFleet) -> list[str]:
    return [arg for h in HOSTS for arg in ("--host", f"{h}={fleet.address(h)}")]


def fingerprint(host: str, directory: Path) -> str:
    """The simulated host's key fingerprint as ssh-keygen -l prints it (not our own code)."""
    public = directory / f"{host}.pub"
    public.write_text(hostkeys.public_key_line(host) + "\n")
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


def fingerprint_args(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        arg
        for host in HOSTS
        for arg in ("--accept-fingerprint", f"{host}={fingerprint(host, directory)}")
    ]
