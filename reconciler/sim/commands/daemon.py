"""daemon(8): usr.sbin/daemon/daemon.c, the options the reconciler uses.

``daemon [-f] [-p child_pidfile] [-P supervisor_pidfile] [-o output_file]
command ...``: returns at once; a detached supervisor (new session) runs the
command with stdin from /dev/null and, with ``-o``, stdout and stderr
appended to the file (``-f``: to /dev/null otherwise), writes the pidfiles,
waits for the command and removes them when it ends. It survives the SSH
session that started it, not a reboot.
"""

from __future__ import annotations

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
    for key in ("-p", "-P"):
        if key in flags:
            try:
                existing = int(Path(flags[key]).read_text().strip())
                os.kill(existing, 0)
            except (OSError, ValueError):
                continue
            print(f"daemon: process already running, pid: {existing}", file=sys.stderr)
            return 3
    sys.stdout.flush()
    if os.fork() > 0:
        return 0
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if "-o" in flags:
        out = os.open(flags["-o"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    else:
        out = devnull
    os.dup2(out, 1)
    os.dup2(out, 2)
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)  # noqa: S606 - daemon(8) runs what it is given
        except OSError as exc:
            os.write(2, f"daemon: execvp: {command[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    if "-p" in flags:
        Path(flags["-p"]).write_text(f"{child}\n")
    if "-P" in flags:
        Path(flags["-P"]).write_text(f"{os.getpid()}\n")
    try:
        os.waitpid(child, 0)
    finally:
        for key in ("-p", "-P"):
            if key in flags:
                Path(flags[key]).unlink(missing_ok=True)
    os._exit(0)
