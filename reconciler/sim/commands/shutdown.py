"""shutdown(8) and reboot(8): sbin/shutdown/shutdown.c, sbin/reboot/reboot.c.

``shutdown -r now`` prints ``Shutdown NOW!`` on stdout, forks, and the parent
ends with ``errx(0, "[pid %d]", child)`` (``shutdown: [pid N]`` on stderr,
exit 0): the command returns at once. The child warns the users, writes
/var/run/nologin and signals init (SIGINT reboot, SIGUSR1 halt, SIGUSR2
power-down); init then runs rc.shutdown and kills every process, so the
system goes down a little later (``Timings.shutdown_seconds``), while the
old system still answers. ``-p``/``-h`` power off for good (until ``sim
power-cycle``). Only ``now`` (or ``+0``) is simulated. reboot(8) does not
return: the session drops with the host.
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


def _request(host: Host, how: str, delay: float) -> None:
    """Ask the supervisor to take the host down ``delay`` seconds from now."""
    host.count("reboot" if how == "reboot" else "halt")
    path = host.dir / "requests" / "shutdown"
    tmp = path.with_name(".shutdown.new")
    tmp.write_text(json.dumps({"how": how, "at": time.time() + delay}) + "\n", encoding="utf-8")
    tmp.replace(path)
    sys.stdout.flush()


def run(host: Host, prog: str, argv: list[str]) -> int:
    if prog == "reboot":
        _request(host, "reboot", 0.0)
        # reboot(2) does not return: the supervisor kills the namespace first.
        time.sleep(30)
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
    print("Shutdown NOW!", flush=True)
    _, timings = host.fleet()
    _request(host, how, timings.shutdown_seconds * host.slow_factor())
    # errx(0, "[pid %d]", forkpid): the parent reports the child and exits 0.
    print(f"shutdown: [pid {os.getpid() + 1}]", file=sys.stderr, flush=True)
    return 0
