"""lockf(1): usr.bin/lockf/lockf.c and lockf.1, the form the reconciler uses.

``lockf [-ksw] [-t seconds] file command [arguments]``: opens ``file``
(created if missing, mode 0666 before the umask; read-only, ``-w`` for
writing) with an exclusive flock(2) lock, forks and execs ``command`` (the
child does not hold the lock: the lockf process does), waits for it and
exits with its status (EX_SOFTWARE, 70, when it was signalled); a command
that cannot be executed exits 1 after a warning. ``-t 0``: one try; ``-t N``:
wait at most N seconds; no ``-t``: wait for ever. A lock not acquired exits
EX_TEMPFAIL (75) with ``lockf: FILE: already locked`` (nothing with ``-s``),
and the command is not run. Without ``-k`` the file is removed when the
command ends; with it the file stays and is only unlocked. SIGINT and
SIGQUIT are ignored while the command runs; SIGTERM unlocks (or removes)
and ends lockf. Because the lock belongs to the lockf process, it goes away
when lockf exits however that happens, even if the command lives on.

Not simulated: ``-n`` and the file-descriptor form (the reconciler uses neither).
"""

from __future__ import annotations

import contextlib
import fcntl
import getopt
import os
import signal
import sys
import time
from types import FrameType

from reconciler.sim.commands.host import Host

EX_USAGE, EX_SOFTWARE, EX_TEMPFAIL, EX_CANTCREAT = 64, 70, 75, 73
USAGE = (
    "usage: lockf [-knsw] [-t seconds] file command [arguments]\n       lockf [-s] [-t seconds] fd"
)


def _acquire(name: str, writing: bool, wait: float | None) -> int | None:
    """The locked descriptor, or None when ``wait`` (seconds; None: for ever) ran out."""
    flags = (os.O_WRONLY if writing else os.O_RDONLY) | os.O_CREAT
    fd = os.open(name, flags, 0o666)
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "knst:w")
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return EX_USAGE
    flags = dict(opts)
    if "-n" in flags:
        print("lockf: -n is not simulated", file=sys.stderr)
        return EX_USAGE
    wait: float | None = None
    if "-t" in flags:
        text = flags["-t"]
        if not text.isdigit():
            print(f'lockf: invalid timeout "{text}"', file=sys.stderr)
            return EX_USAGE
        wait = float(int(text))
    if len(rest) < 2:
        print(USAGE, file=sys.stderr)
        return EX_USAGE
    name, command = rest[0], rest[1:]
    keep = "-k" in flags
    try:
        fd = _acquire(name, "-w" in flags, wait)
    except OSError as exc:
        print(f"lockf: cannot open {name}: {exc.strerror}", file=sys.stderr)
        return EX_CANTCREAT
    if fd is None:
        if "-s" not in flags:
            print(f"lockf: {name}: already locked", file=sys.stderr)
        return EX_TEMPFAIL

    def cleanup() -> None:
        if keep:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            with contextlib.suppress(OSError):
                os.unlink(name)

    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        os.close(fd)
        try:
            os.execvp(command[0], command)  # noqa: S606 (lockf runs its command as given)
        except OSError as exc:
            print(f"lockf: {command[0]}: {exc.strerror}", file=sys.stderr)
            os._exit(1)

    def killed(signum: int, frame: FrameType | None) -> None:
        cleanup()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, killed)
    _, status = os.waitpid(child, 0)
    cleanup()
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else EX_SOFTWARE
