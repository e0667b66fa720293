"""shutdown(8) and reboot(8): sbin/shutdown/shutdown.c, sbin/reboot/reboot.c.

``shutdown -r now`` prints ``Shutdown NOW!`` and ``shutdown: [pid N]`` (as
FreeBSD does when the time is ``now``), asks the fleet supervisor to power
the host off (a request file), and the session drops when the host dies.
``-p``/``-h`` power off for good. Only ``now`` (or ``+0``) is simulated.
"""

from __future__ import annotations

import getopt
import json
import os
import sys
import time

from reconciler.sim.commands.host import Host

_USAGE = (
    "usage: shutdown [-] [-c | -f | -h | -p | -r | -k] [-o [-n]] [-q] time [warning-message ...]"
)


def _request(host: Host, how: str) -> None:
    host.count("reboot" if how == "reboot" else "halt")
    path = host.dir / "requests" / "shutdown"
    path.write_text(json.dumps({"how": how, "at": time.time()}) + "\n", encoding="utf-8")
    sys.stdout.flush()
    # The supervisor kills the namespace within a poll interval; never return earlier.
    time.sleep(30)


def run(host: Host, prog: str, argv: list[str]) -> int:
    if prog == "reboot":
        print(f"reboot: [pid {os.getpid()}]", flush=True)
        _request(host, "reboot")
        return 0
    try:
        opts, rest = getopt.getopt(argv, "cfhknopqr")
    except getopt.GetoptError:
        print(_USAGE, file=sys.stderr)
        return 1
    flags = {o for o, _ in opts}
    if not rest:
        print(_USAGE, file=sys.stderr)
        return 1
    if rest[0] not in ("now", "+0", "0"):
        print("shutdown: simulated hosts only shut down 'now'", file=sys.stderr)
        return 1
    how = "reboot" if "-r" in flags else "halt" if flags & {"-h", "-p"} else ""
    if not how:
        print("shutdown: single-user mode is not simulated; use -r, -h or -p", file=sys.stderr)
        return 1
    print("Shutdown NOW!")
    print(f"shutdown: [pid {os.getpid()}]", flush=True)
    _request(host, how)
    return 0
