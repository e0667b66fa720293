"""FreeBSD commands as simulated inside a host.

Each host's boot environment holds tiny scripts at the FreeBSD paths
(``/usr/bin/uname``, ``/sbin/bectl`` ...) that call :func:`main` with the
command's name. Each module here has ``run(host, argv) -> int`` and follows
the FreeBSD man page and sources named in ``docs/freebsd-commands.md``.
"""

from __future__ import annotations

import importlib
import sys

_MODULES = {
    "freebsd-version": "freebsd_version",
    "uname": "uname",
    "sysctl": "sysctl",
    "make": "make",
    "bectl": "bectl",
    "etcupdate": "etcupdate",
    "shutdown": "shutdown",
    "reboot": "shutdown",
    "mount": "mount",
    "umount": "mount",
    "service": "service",
    "sysrc": "sysrc",
    "daemon": "daemon",
    "pgrep": "pgrep",
    "lockf": "lockf",
    "fetch": "fetch",
    "showmount": "mount",
    "df": "df",
    "zfs": "zfs",
    "pkg": "pkg7",  # /usr/sbin/pkg, the bootstrapper
    "pkg8": "pkg",  # /usr/local/sbin/pkg and pkg-static, from the ports-mgmt/pkg package
    "poudriere": "poudriere",
    "jail": "jail",
    "rcorder": "rcorder",
}


def main(name: str, argv: list[str]) -> int:
    from reconciler.sim.commands.host import Host

    module = importlib.import_module(f"reconciler.sim.commands.{_MODULES[name]}")
    try:
        return int(module.run(Host.current(), name, argv))
    except BrokenPipeError:
        return 141
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()
