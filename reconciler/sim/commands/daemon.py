"""daemon(8): usr.sbin/daemon/daemon.c, the options the reconciler uses.

``daemon [-f] [-p child_pidfile] [-P supervisor_pidfile] [-o output_file]
command ...``: opens the output file, then the pidfiles with pidfile_open(3)
(created empty and flock(2)ed; a locked one means ``daemon: process already
running, pid: N``, exit 3), then daemon(3) forks and the command returns 0
at once. The detached supervisor (new session) forks the command, whose pid
goes into the child pidfile only then (pidfile_write in the child), so for a
moment after ``daemon`` returns the pidfile exists but is empty (``pgrep -F``
says ``Pidfile ... is empty``, exit 3). stdin is /dev/null; with ``-o``,
stdout and stderr are appended to the file. The pidfiles are removed when
the command ends. It survives the SSH session that started it, not a reboot.
"""

from __future__ import annotations

import errno
import fcntl
import getopt
import os
import sys
from pathlib import Path

from reconciler.sim.commands.host import Host

USAGE = (
    "usage: daemon [-cfHrS] [-p child_pidfile] [-P supervisor_pidfile]\n"
    "              [-u user] [-o output_file] [-t title]\n"
    "              [-l syslog_facility] [-s syslog_priority]\n"
    "              [-T syslog_tag] [-m output_mask] [-R restart_delay_secs]\n"
    "command arguments ..."
)


def _pidfile_open(path: str) -> int | str:
    """pidfile_open(3): an open, locked, empty pidfile; or the running owner's pid text."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        try:
            return Path(path).read_text().strip() or "-1"
        except OSError:
            return "-1"
    os.ftruncate(fd, 0)
    return fd


def _pidfile_write(fd: int, pid: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{pid}\n".encode(), 0)


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, command = getopt.getopt(argv, "cfHrSp:P:u:o:t:l:s:T:m:R:")
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return 1
    if not command:
        print(USAGE, file=sys.stderr)
        return 1
    flags = dict(opts)
    out = None
    if "-o" in flags:
        try:
            out = os.open(flags["-o"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            print(f"daemon: open: {exc.strerror}", file=sys.stderr)
            return 7
    pidfiles: dict[str, int] = {}
    for key in ("-p", "-P"):
        if key not in flags:
            continue
        try:
            opened = _pidfile_open(flags[key])
        except OSError as exc:
            print(f"daemon: pidfile ``{flags[key]}'': {exc.strerror}", file=sys.stderr)
            return 2
        if isinstance(opened, str):
            for path in (flags[k] for k in pidfiles):
                Path(path).unlink(missing_ok=True)
            print(f"daemon: process already running, pid: {opened}", file=sys.stderr)
            return 3
        pidfiles[key] = opened
    sys.stdout.flush()
    if os.fork() > 0:
        return 0  # daemon(3): the parent is done; the pidfiles may still be empty
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(out if out is not None else devnull, 1)
    os.dup2(out if out is not None else devnull, 2)
    if "-P" in pidfiles:
        _pidfile_write(pidfiles["-P"], os.getpid())
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)  # noqa: S606 - daemon(8) runs what it is given
        except OSError as exc:
            os.write(2, f"daemon: {command[0]}: {exc.strerror}\n".encode())
            os._exit(1)
    if "-p" in pidfiles:
        _pidfile_write(pidfiles["-p"], child)
    try:
        os.waitpid(child, 0)
    finally:
        for key in pidfiles:
            Path(flags[key]).unlink(missing_ok=True)
    os._exit(0)
