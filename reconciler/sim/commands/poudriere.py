"""poudriere(8) (``/usr/local/bin/poudriere``, ports-mgmt/poudriere), simulated: jail, ports, bulk.

Sources (freebsd/poudriere): src/bin/poudriere.in (``-e etcdir``, the
command list), src/share/poudriere/jail.sh, ports.sh, bulk.sh, common.sh,
include/pkg.sh; the man pages poudriere-jail(8), poudriere-ports(8),
poudriere-bulk(8).

- Configuration: ``${POUDRIERE_ETC}/poudriere.conf`` (``-e`` or
  /usr/local/etc), sourced as sh: the simulator reads its ``VAR=value``
  lines with ``${VAR}`` expansion. Without one: "Unable to find a readable
  poudriere.conf in ...". Jails and ports trees are directories of one-file
  attributes under ``${POUDRIERE_ETC}/poudriere.d/{jails,ports}/<name>/``
  (common.sh attr_set).
- Messages are ``msg``'s: ``[HH:MM:SS] text`` with the time since start
  (common.sh _msg_fmt_n, calculate_duration); errors ``[..] Error: text``
  on stderr (msg_error), and ``err N`` exits N.
- ``jail -c -j NAME -m src=PATH`` copies PATH to the jail's /usr/src and
  runs installworld from the *existing* objects (MAKEOBJDIRPREFIX from the
  environment, build(7)); without a finished build: "No completed build
  found.  Did you mean to pass in -b?" and the jail is removed. Names: no
  '.' (jail(8)). ``jail -l [-n] [-q]``, ``jail -d -j NAME [-y] [-C what]``.
- ``ports -c -p NAME -m null -M PATH`` registers an existing tree (names
  with neither '.' nor '-'); ``ports -l``, ``ports -d -p NAME [-y] [-k]``.
- ``bulk``: see reconciler/sim/poudrierebulk.py.
"""

from __future__ import annotations

import getopt
import re
import shutil
import sys
import time
from pathlib import Path

from reconciler.sim import kernel
from reconciler.sim.commands.host import Host
from reconciler.sim.poudrierebulk import Poudriere, bulk

EX_USAGE = 64


def _conf(etc: Path) -> dict[str, str] | None:
    values: dict[str, str] = {}
    found = False
    for conf in (etc / "poudriere.conf", etc / "poudriere.d" / "poudriere.conf"):
        if not conf.is_file():
            continue
        found = True
        for line in conf.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^\s*([A-Z_][A-Z0-9_]*)=(.*)$", line.split("#", 1)[0].strip())
            if match:
                value = match.group(2).strip().strip('"').strip("'")
                value = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), ""), value)
                values[match.group(1)] = value
    return values if found else None


def _jail(p: Poudriere, argv: list[str]) -> int:
    try:
        opts, _ = getopt.getopt(argv, "bBcdiklnqsuxyXa:f:j:J:K:m:M:p:P:S:t:U:v:z:C:D")
    except getopt.GetoptError as exc:
        return p.err(EX_USAGE, str(exc))
    flags = dict(opts)
    name = flags.get("-j", "")
    jails = p.etc / "poudriere.d" / "jails"
    if "-l" in flags:
        names = sorted(d.name for d in jails.iterdir()) if jails.is_dir() else []
        if "-n" in flags:
            print("\n".join(names) if names else "", end="\n" if names else "")
            return 0
        if "-q" not in flags:
            print(
                f"{'JAILNAME':<14} {'VERSION':<12} {'OSVERSION':<9} ARCH  METHOD        "
                f"{'TIMESTAMP':<19} PATH"
            )
        for jname in names:
            get = p.jget(jname)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(get("timestamp") or 0)))
            osversion = p.osversion(Path(get("mnt")))
            print(
                f"{jname:<14} {get('version'):<12} {osversion:<9} {get('arch'):<5} "
                f"{get('method'):<13} {stamp:<19} {get('mnt')}"
            )
        return 0
    if not name:
        return p.usage("JAILNAME")
    if "-d" in flags:
        if not (jails / name).is_dir():
            return p.err(1, f"No such jail: {name}")
        mnt = Path(p.jget(name)("mnt"))
        p.msg_n(f"Removing {name} jail...")
        shutil.rmtree(mnt, ignore_errors=True)
        shutil.rmtree(jails / name)
        if "packages" in (flags.get("-C") or "") or flags.get("-C") == "all":
            for repo in (p.data / "packages").glob(f"{name}-*"):
                shutil.rmtree(repo, ignore_errors=True)
        print(" done", flush=True)
        return 0
    if "-c" not in flags:
        return p.usage()
    if "." in name:
        return p.err(1, "The jailname cannot contain a period (.). See jail(8)")
    if (jails / name).is_dir():
        return p.err(2, f"The jail {name} already exists")
    method = flags.get("-m", "http")
    if not method.startswith("src="):
        return p.err(1, f"the simulator builds jails with -m src=PATH only, not {method}")
    if p.conf.get("NO_ZFS") != "yes" and not p.conf.get("ZPOOL"):
        return p.err(EX_USAGE, "Please provide a ZPOOL variable in your poudriere.conf")
    src = Path(method[4:])
    if not src.is_dir():
        return p.err(1, "No such source directory")
    mnt = Path(flags.get("-M") or f"{p.conf.get('BASEFS', '/usr/local/poudriere')}/jails/{name}")
    if mnt.exists():
        return p.err(1, f"Directory {mnt} already exists")
    return p.create_jail(name, src, mnt, method, flags.get("-v"), flags.get("-a", "amd64"))


def _ports(p: Poudriere, argv: list[str]) -> int:
    try:
        opts, _ = getopt.getopt(argv, "B:cDFuU:dklp:qf:nM:m:vy")
    except getopt.GetoptError as exc:
        return p.err(EX_USAGE, str(exc))
    flags = dict(opts)
    name = flags.get("-p", "default")
    trees = p.etc / "poudriere.d" / "ports"
    if "-l" in flags:
        names = sorted(d.name for d in trees.iterdir()) if trees.is_dir() else []
        if "-n" in flags:
            for ptname in names:
                print(ptname)
            return 0
        if "-q" not in flags:
            print(f"{'PORTSTREE':<10} METHOD {'TIMESTAMP':<19} PATH")
        for ptname in names:
            get = p.pget(ptname)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(get("timestamp") or 0)))
            print(f"{ptname:<10} {get('method'):<6} {stamp:<19} {get('mnt')}")
        return 0
    if "-d" in flags:
        if not (trees / name).is_dir():
            return p.err(2, f"No such ports tree {name}")
        shutil.rmtree(trees / name)
        p.msg(f'Deleting portstree "{name}" done')
        return 0
    if "-c" not in flags:
        return p.usage()
    if (trees / name).is_dir():
        return p.err(2, f"The ports tree, {name}, already exists")
    if "." in name:
        return p.err(1, "The ports name cannot contain a period (.). See jail(8)")
    if "-" in name:
        return p.err(
            1,
            "The ports name should not contain a dash (-). Poudriere will parse it "
            "as a SETNAME (-z).",
        )
    if flags.get("-m") != "null":
        return p.err(1, "the simulator registers existing trees only: -m null -M PATH")
    where = flags.get("-M")
    if not where:
        return p.err(1, "Must set -M to path of ports tree to use")
    if where == "/":
        return p.err(1, "Cannot use / for -M")
    for key, value in (
        ("mnt", where),
        ("created_fs", "0"),
        ("method", "null"),
        ("timestamp", str(int(time.time()))),
    ):
        p.pset(name, key, value)
    p.msg(f'Imported ports tree "{name}" from {where}')
    return 0


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "Ade:ENs:vxX")
    except getopt.GetoptError:
        print(
            "Usage: poudriere [-ANv] [-e etcdir] [-s var[=value]] command [options]",
            file=sys.stderr,
        )
        return 1
    flags = dict(opts)
    etc = Path(flags.get("-e", "/usr/local/etc"))
    if not etc.is_dir():
        print(f"Error: argument '{etc}' not a directory")
        return 1
    if not rest:
        print(
            "Usage: poudriere [-ANv] [-e etcdir] [-s var[=value]] command [options]",
            file=sys.stderr,
        )
        return 1
    conf = _conf(etc)
    command, args = rest[0], rest[1:]
    p = Poudriere(host, etc, conf or {})
    if conf is None:
        return p.err(1, f"Unable to find a readable poudriere.conf in {etc} or {etc}/poudriere.d")
    if command == "jail":
        return _jail(p, args)
    if command == "ports":
        return _ports(p, args)
    if command == "bulk":
        return bulk(p, args)
    if command == "version":
        print("3.4.2")
        return 0
    print(f"Unknown command '{command}'", file=sys.stderr)
    return 1


def jail_version(src: Path) -> str:
    """RELEASE as update_version() makes it from newvers.sh (e.g. 14.2-STABLE)."""
    return kernel.source_info(src).get("version", "")
