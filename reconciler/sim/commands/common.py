"""Helpers shared by the long-running simulated commands (make, etcupdate)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reconciler.sim.commands.host import Host


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[1])


def under_ssh_session() -> bool:
    """True when an sshd session is among our ancestors (not detached by daemon(8))."""
    pid = os.getppid()
    for _ in range(64):
        if pid <= 1:
            return False
        if _comm(pid) == "sshd":
            return True
        pid = _ppid(pid)
    return False


def drop_connections() -> None:
    """Kill every SSH connection of this host (the namespace's sshd children).

    A command still attached to its session then dies like a process whose
    terminal went away (SIGHUP); one started under daemon(8) carries on.
    """
    attached = under_ssh_session()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == "1":
            continue
        pid = int(entry.name)
        if _comm(pid) == "sshd" and _ppid(pid) == 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    if attached:
        os.killpg(os.getpgid(0), signal.SIGHUP)
        time.sleep(5)
        sys.exit(129)


def progress(
    host: Host, seconds: float, lines: Sequence[str], *, fail_at: int | None = None
) -> int:
    """Print ``lines`` spread over ``seconds`` (slow factor applied).

    Returns the index where it stopped: ``len(lines)`` normally, ``fail_at``
    when a failure fault cut it short. A pending ``connection-drop`` fault
    fires halfway (once).
    """
    total = seconds * host.slow_factor()
    steps = max(len(lines), 1)
    dropped = False
    for index in range(steps):
        if fail_at is not None and index >= fail_at:
            return fail_at
        if not dropped and index >= steps // 2 and host.fault("connection-drop") is not None:
            dropped = True
            host.take_fault("connection-drop")
            drop_connections()
        if index < len(lines):
            with contextlib.suppress(BrokenPipeError):
                print(lines[index], flush=True)
        if total > 0:
            time.sleep(total / steps)
    return len(lines)
