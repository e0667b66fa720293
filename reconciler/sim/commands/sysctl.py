"""sysctl(8) for the handful of OIDs the reconciler reads (sbin/sysctl/sysctl.c).

``sysctl NAME`` prints ``NAME: value``, ``-n`` the value alone, then a newline
(``parse``: ``show_var`` then ``putchar('\n')``), so a value that ends in a
newline (kern.version, kern.conftxt) is followed by an empty line. An unknown
OID is ``sysctl: unknown oid 'NAME'`` and exit 1. ``-w``/``NAME=value`` are
refused (the simulated kernel is read-only).

``kern.conftxt`` exists only when the running kernel was built with
``options INCLUDE_CONFIG_FILE`` (``sys/kern/kern_mib.c``); its text is what
config(8) embedded, see :mod:`reconciler.sim.kernconf`.
"""

from __future__ import annotations

import getopt
import sys
import time

from reconciler.sim import kernconf, kernel
from reconciler.sim.commands.host import Host


def _boottime(when: float) -> str:
    # sysctl(8) prints a struct timeval: "{ sec = N, usec = N } <ctime>".
    sec, usec = int(when), int((when % 1) * 1_000_000)
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(sec))
    return f"{{ sec = {sec}, usec = {usec} }} {stamp}"


def values(host: Host) -> dict[str, str]:
    st = host.state()
    kern = dict(st.get("running_kernel") or {})
    return {
        "kern.ostype": "FreeBSD",
        "kern.osrelease": kern.get("version", ""),
        "kern.osrevision": "199506",
        "kern.osreldate": kern.get("osreldate", ""),
        "kern.version": kernel.kern_version(kern),
        "kern.ident": kern.get("ident", ""),
        "kern.hostname": host.name,
        "kern.bootfile": str(st.get("bootfile") or "/boot/kernel/kernel"),
        "kern.boottime": _boottime(float(st.get("booted_at") or 0.0)),
        "hw.machine": "amd64",
        "hw.machine_arch": "amd64",
        "hw.ncpu": "2",
    } | ({"kern.conftxt": kernconf.decode(kern["conftxt"])} if kern.get("conftxt") else {})


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, names = getopt.getopt(argv, "bdehiNnoqTWx")
    except getopt.GetoptError as exc:
        print(f"sysctl: {exc.msg}", file=sys.stderr)
        return 1
    flags = {o for o, _ in opts}
    table = values(host)
    status = 0
    for name in names:
        if "=" in name:
            print(f"sysctl: oid '{name.partition('=')[0]}' is read only", file=sys.stderr)
            status = 1
            continue
        if name not in table:
            if "-i" not in flags:
                print(f"sysctl: unknown oid '{name}'", file=sys.stderr)
                status = 1
            continue
        value = table[name]
        if "-N" in flags:
            print(name)
        elif "-n" in flags:
            sys.stdout.write(value + "\n")
        else:
            sys.stdout.write(f"{name}: {value}\n")
    return status
