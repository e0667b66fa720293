"""Reboot a host and wait, bounded, until it is back on a new boot.

"Back" means a new kern.boottime, not merely an answering sshd: right after
`shutdown -r now` the old system may still answer for a moment.
"""

from __future__ import annotations

import contextlib

from reconciler.clock import Clock
from reconciler.config.model import Host
from reconciler.errors import TransportError
from reconciler.transport.ssh import Connection

BOOTTIME = ["sysctl", "-n", "kern.boottime"]


def boottime(conn: Connection) -> str:
    result = conn.run(BOOTTIME, timeout=30)
    return result.stdout.strip() if result.ok else ""


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
    if before is None:
        try:
            before = boottime(conn)
        except TransportError:
            before = ""
    with contextlib.suppress(TransportError):  # the session drops with the host: expected
        conn.run(["shutdown", "-r", "now"], timeout=30)
    conn.close()
    deadline = clock.now() + timeout
    while clock.now() < deadline:
        clock.sleep(poll)
        try:
            now = boottime(conn)
        except TransportError:
            conn.close()
            continue
        if now and now != before:
            return True
    return False
