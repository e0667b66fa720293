"""pkg(8) (``/usr/local/sbin/pkg``, installed by the ports-mgmt/pkg package), simulated.

Global options as src/main.c: ``-N`` (activation test: "N packages
installed" on stderr, or "package database non-existent"), ``-c DIR`` and
``-r DIR`` (mutually exclusive; see reconciler/sim/pkgrepos.py for what
each changes), ``-o NAME=VALUE`` (ASSUME_ALWAYS_YES). Commands: update,
install, upgrade, delete/remove, autoremove, query, rquery, info, set -A,
add, repo.
Confirmation prompts need ``-y`` or ASSUME_ALWAYS_YES; with stdin not a tty
the answer is no. ``install``/``upgrade`` update the catalogues first
(``-U`` skips it) and stop when one cannot be updated: on a simulated host
the stock FreeBSD repository has no network, so ``-r NAME`` matters as it
does offline. Fault ``pkg-install-fails`` (value: a package name or origin,
or bare for the second package of a job) fails extraction midway.
"""

from __future__ import annotations

import getopt
import sys
from pathlib import Path

from reconciler.sim import pkgdb
from reconciler.sim.commands import pkgcmds, pkgquery
from reconciler.sim.commands.host import Host
from reconciler.sim.pkgctx import Pkg
from reconciler.sim.pkgctx import err as _err
from reconciler.sim.pkgjobs import FAILED

VERSION = "1.21.3"


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "c:r:j:C:R:o:Nvdl46", ["chroot=", "rootdir="])
    except getopt.GetoptError as exc:
        _err(str(exc))
        return FAILED
    flags: dict[str, str] = {}
    options: dict[str, str] = {}
    for opt, val in opts:
        if opt == "-o":
            key, _, value = val.partition("=")
            options[key] = value
        else:
            flags[{"--chroot": "-c", "--rootdir": "-r"}.get(opt, opt)] = val
    if "-c" in flags and "-r" in flags:
        _err("-c and -r are mutually exclusive")
        return FAILED
    if "-v" in flags and not rest:
        print(VERSION)
        return 0
    root, mode = Path("/"), ""
    for flag, name in (("-c", "chroot"), ("-r", "rootdir")):
        if flag in flags:
            root, mode = Path(flags[flag]), name
            if not root.is_dir():
                what = "chroot failed" if flag == "-c" else "Invalid rootdir"
                _err(f"{what}: No such file or directory")
                return FAILED
    pkg = Pkg(host, root, mode, options)
    if "-N" in flags:
        conn = pkg.db()
        if conn is None:
            _err("package database non-existent")
            return FAILED
        count = len(pkgdb.all_installed(conn))
        if count == 0:
            _err("no packages registered")
            return FAILED
        if not rest:
            _err(f"{count} packages installed")
            return 0
    if not rest:
        print(
            "Usage: pkg [-v] [-d] [-l] [-N] [-j <jail name or id>|-c <chroot path>|-r <rootdir>] "
            "[-C <configuration file>] [-R <repo config dir>] [-o var=value] [-4|-6] "
            "<command> [<args>]",
            file=sys.stderr,
        )
        return FAILED
    command, args = rest[0], rest[1:]
    try:
        if command == "install":
            return pkgcmds.install(pkg, args)
        if command == "upgrade":
            return pkgcmds.upgrade(pkg, args)
        if command in ("delete", "remove"):
            return pkgcmds.delete(pkg, args)
        if command == "autoremove":
            return pkgcmds.delete(pkg, args, auto=True)
        if command == "update":
            opts2, _ = getopt.gnu_getopt(args, "fqr:")
            return (
                0 if pkg.update(dict(opts2).get("-r"), "-q" in dict(opts2)) is not None else FAILED
            )
        if command == "query":
            return pkgquery.query(pkg.db(), args)
        if command == "rquery":
            return pkgquery.rquery(lambda repo: pkg.update(repo, quiet=True), args)
        if command == "info":
            return pkgquery.info(pkg.db(), args)
        if command == "set":
            return pkgcmds.set_(pkg, args)
        if command == "add":
            return pkgcmds.add(pkg, args)
        if command == "repo":
            return pkgcmds.repo(args)
    except getopt.GetoptError as exc:
        _err(str(exc))
        return FAILED
    _err(f"unknown command: {command}")
    return FAILED
