"""uname(1): usr.bin/uname/uname.c.

Fields print in the fixed order s n r v m p i K U b whatever the option
order; ``-a`` is ``-snrvm``; no option is ``-s``. ``-v`` is kern.version
with every newline and tab turned into a space (so it ends in a space).
``-K`` is the running kernel's __FreeBSD_version, ``-U`` the userland's.
"""

from __future__ import annotations

import getopt
import sys

from reconciler.sim.commands.host import Host
from reconciler.sim.commands.sysctl import values


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "abiKmnoprsUv")
    except getopt.GetoptError:
        opts, rest = [], ["?"]
    if rest:
        print("usage: uname [-abiKmnoprsUv]", file=sys.stderr)
        return 1
    flags = {o[1] for o, _ in opts}
    if "a" in flags:
        flags |= set("snrvm")
    if "o" in flags:
        flags.add("s")
    if not flags:
        flags.add("s")
    table = values(host)
    fields = {
        "s": table["kern.ostype"],
        "n": host.name,
        "r": table["kern.osrelease"],
        "v": table["kern.version"].replace("\n", " ").replace("\t", " "),
        "m": table["hw.machine"],
        "p": table["hw.machine_arch"],
        "i": table["kern.ident"],
        "K": table["kern.osreldate"],
        "U": host.world().get("osreldate", ""),
        "b": "",
    }
    print(" ".join(fields[f] for f in "snrvmpiKUb" if f in flags))
    return 0
