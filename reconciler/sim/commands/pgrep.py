"""pgrep(1): bin/pkill/pkill.c, the part the reconciler and its tests use.

``pgrep [-Lfilqvx] [-d delim] [-F pidfile] [pattern ...]`` over the host's
own processes (its pid namespace's /proc). Exit status: 0 some process
matched, 1 none, 2 bad usage, 3 a fatal error, e.g. from takepid():

- ``Cannot open pidfile `F': No such file or directory`` (no such file),
- ``Pidfile `F' is empty`` (daemon(8) creates it before the pid is known),
- ``Invalid pid in file `F'`` (not a number, or outside 5..99999),
- with ``-L``: ``File 'F' can be locked`` (nobody holds the pidfile's lock,
  so the daemon that wrote it is gone).

pgrep never lists itself or its ancestors. Matching is against the command
name (``-f``: the whole argument list) with an extended regular expression;
``-x`` wants the whole string to match.
"""

from __future__ import annotations

import fcntl
import getopt
import os
import re
import sys
from pathlib import Path

from reconciler.sim.commands.host import Host

STATUS_MATCH, STATUS_NOMATCH, STATUS_BADUSAGE, STATUS_ERROR = 0, 1, 2, 3
MIN_PID, MAX_PID = 5, 99999
USAGE = (
    "usage: pgrep [-LSfilnoqvx] [-d delim] [-F pidfile] [-G gid] [-M core] [-N system]\n"
    "             [-P ppid] [-U uid] [-c class] [-g pgrp] [-j jail]\n"
    "             [-s sid] [-t tty] [-u euid] pattern ..."
)


class Fatal(Exception):
    """errx(STATUS_ERROR, ...)."""


def takepid(pidfile: str, lock: bool) -> int:
    try:
        handle = open(pidfile, encoding="ascii", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise Fatal(f"Cannot open pidfile `{pidfile}': {exc.strerror}") from exc
    with handle:
        if lock:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: the daemon is alive
            except OSError as exc:
                raise Fatal(f"Error while locking file '{pidfile}'") from exc
            else:
                raise Fatal(f"File '{pidfile}' can be locked")
        line = handle.readline()
    if not line:
        raise Fatal(f"Pidfile `{pidfile}' is empty")
    match = re.match(r"\s*([+-]?\d+)", line)
    rest = line[match.end() :] if match else line
    if match is None or (rest and not rest[0].isspace()):
        raise Fatal(f"Invalid pid in file `{pidfile}'")
    pid = int(match.group(1))
    if not MIN_PID <= pid <= MAX_PID:
        raise Fatal(f"Invalid pid in file `{pidfile}'")
    return pid


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, command name, argument list) of every process of this host."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (ppid, name, args or name)
    return found


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, patterns = getopt.getopt(argv, "DF:G:ILM:N:P:SU:ac:d:fg:ij:lnoqs:t:u:vx")
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return STATUS_BADUSAGE
    flags = dict(opts)
    if "-F" not in flags and not patterns:
        print(USAGE, file=sys.stderr)
        return STATUS_BADUSAGE
    try:
        if "-L" in flags and "-F" not in flags:
            raise Fatal("Option -L doesn't make sense without -F")
        wanted = takepid(flags["-F"], "-L" in flags) if "-F" in flags else None
    except Fatal as exc:
        print(f"pgrep: {exc}", file=sys.stderr)
        return STATUS_ERROR
    procs = _processes()
    cflags = re.IGNORECASE if "-i" in flags else 0
    selected = []
    for pid, (_, name, args) in sorted(procs.items()):
        if wanted is not None and pid != wanted:
            continue
        text = args if "-f" in flags else name
        ok = True
        for pattern in patterns:
            try:
                match = re.search(pattern, text, cflags)
            except re.error:
                print(f"pgrep: Cannot compile regular expression `{pattern}'", file=sys.stderr)
                return STATUS_BADUSAGE
            full = match is not None and match.start() == 0 and match.end() == len(text)
            ok = ok and (full if "-x" in flags else match is not None)
        if ok != ("-v" in flags):
            selected.append(pid)
    # never itself nor its ancestors (pkill.c, unless -a)
    if "-a" not in flags:
        pid = os.getpid()
        while pid in procs or pid == os.getpid():
            if pid in selected:
                selected.remove(pid)
            pid = procs.get(pid, (0, "", ""))[0]
            if pid <= 1:
                break
    if "-q" not in flags and selected:
        delim = flags.get("-d", "\n")
        shown = [f"{p} {procs[p][2] if '-f' in flags else procs[p][1]}" for p in selected]
        print(delim.join(shown if "-l" in flags else map(str, selected)))
    return STATUS_MATCH if selected else STATUS_NOMATCH
