"""Run the reconciler as a user does, in a process of its own: on a pipe or on a terminal."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def environment(
    extra: Mapping[str, str] | None = None, drop: tuple[str, ...] = ()
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", *drop)}
    env.update({"PYTHONUNBUFFERED": "1", "TERM": "xterm"})
    env.update(extra or {})
    return env


def run(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``reconciler ARGS`` with stdout and stderr on pipes (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=dict(env) if env is not None else environment(),
    )


def on_terminal(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 300, columns: int = 160
) -> tuple[int, str]:
    """``reconciler ARGS`` on a pseudo-terminal (stdin, stdout, stderr): exit status and output."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=dict(env) if env is not None else environment(),
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not data:
                break
            chunks.append(data)
        else:
            proc.kill()
            raise AssertionError("timed out: " + b"".join(chunks).decode(errors="replace")[-3000:])
        return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
