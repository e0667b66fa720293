"""freebsd-version(1): bin/freebsd-version/freebsd-version.sh.in.

Options k, r, u in any combination; output order is always kernel, running,
userland (the script tests its flags in that order); no option means -u.
"""

from __future__ import annotations

import getopt
import sys
from pathlib import Path

from reconciler.sim import kernel
from reconciler.sim.commands.host import Host


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "kruj:")
    except getopt.GetoptError:
        print("usage: freebsd-version [-kru] [-j jail]", file=sys.stderr)
        return 1
    if rest:
        print("usage: freebsd-version [-kru] [-j jail]", file=sys.stderr)
        return 1
    flags = {o for o, _ in opts}
    if not flags & {"-k", "-r", "-u"}:
        flags.add("-u")
    if "-k" in flags:
        kern = kernel.read(Path("/") / kernel.KERNEL_FILE)
        if kern is None:
            print("freebsd-version: unable to locate kernel", file=sys.stderr)
            return 1
        print(kern.get("version", ""))
    if "-r" in flags:
        print(host.running_kernel().get("version", ""))
    if "-u" in flags:
        print(host.world().get("version", ""))
    return 0
