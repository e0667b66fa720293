"""Reboot a host and wait, bounded, until it is back on a new boot.

"Back" means a new kern.boottime, not merely an answering sshd: shutdown(8)
returns at once (``sbin/shutdown/shutdown.c``: the parent ends with
``errx(0, "[pid %d]")`` while its child signals init), and the old system
keeps answering until init's rc.shutdown has run and every process is
killed. So the boot time read before the reboot is compared with the one
read after; when it is unknown (the caller had none, and reading it failed),
the host's own clock at the moment of the shutdown stands in: a new boot
started after it, the old one long before.
"""

from __future__ import annotations

import contextlib
import re

from reconciler.clock import Clock
from reconciler.config.model import Host
from reconciler.errors import TransportError
from reconciler.transport.command import sh
from reconciler.transport.ssh import Connection

BOOTTIME = ["sysctl", "-n", "kern.boottime"]
# The host's clock first (one round trip with the shutdown), then shutdown(8).
REBOOT = sh("date +%s; exec shutdown -r now")

_TIMEVAL = re.compile(r"\{\s*sec\s*=\s*(\d+),\s*usec\s*=\s*(\d+)\s*\}")


def boottime(conn: Connection) -> str:
    result = conn.run(BOOTTIME, timeout=30)
    return result.stdout.strip() if result.ok else ""


def parse_boottime(text: str | None) -> tuple[int, int] | None:
    """``{ sec = N, usec = M } <ctime>`` (sysctl(8)'s struct timeval) -> (N, M)."""
    match = _TIMEVAL.search(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def rebooted(before: str | None, now: str, *, issued_at: int | None = None) -> bool:
    """Pure: whether ``now`` (kern.boottime read after a reboot) is a new boot.

    Against ``before`` when it is known; else against ``issued_at``, the host's
    clock (``date +%s``) when the shutdown was issued; with neither, never: a
    still-running old system must not pass for the new one.
    """
    current = parse_boottime(now)
    if current is None:
        return False
    previous = parse_boottime(before)
    if previous is not None:
        return current != previous
    if issued_at is not None:
        return current[0] >= issued_at
    return False


def reboot_and_wait(
    conn: Connection,
    host: Host,
    *,
    timeout: float,
    clock: Clock,
    poll: float = 1.0,
    before: str | None = None,
) -> bool:
    """True when the host booted again within ``timeout`` seconds.

    ``before`` is the kern.boottime read before the reboot was recorded (read
    here when not given).
    """
    if not before:
        try:
            before = boottime(conn)
        except TransportError:
            before = ""
    issued_at: int | None = None
    with contextlib.suppress(TransportError):  # a session that drops with the host: fine
        out = conn.run(REBOOT, timeout=30)
        first = out.stdout.split("\n", 1)[0].strip()
        issued_at = int(first) if first.isdigit() else None
    conn.close()
    deadline = clock.now() + timeout
    while clock.now() < deadline:
        clock.sleep(poll)
        try:
            now = boottime(conn)
        except TransportError:
            conn.close()
            continue
        if rebooted(before, now, issued_at=issued_at):
            return True
    return False
