"""One reconciler acting on a host at a time, whatever clone or machine it runs from.

The lock lives on the host itself: ``lockf -k -s -t 0 /var/run/reconciler.lock``
(usr.bin/lockf/lockf.1) around a tiny holder that writes who holds it into the
lock file, says ``locked`` and then waits for its stdin to close. The holder
runs in an SSH session the reconciler keeps open for as long as it acts on
the host (reconciler.rollout.host takes it before the host's first step that
changes anything, observes and plans again under it, and releases it when the
host's loop ends). So:

- the lock is held by a process on the host, never by a file's existence:
  lockf's own flock(2) lock, which the kernel drops when lockf exits;
- the reconciler dying (SIGKILL, power loss of its machine) closes the
  session: sshd closes the holder's stdin, the holder exits, lockf exits and
  the lock is free; a host reboot frees it too (the reconciler takes it again
  at its next step);
- a detached job (a build or an install under daemon(8)) is started and
  followed under the lock; if its reconciler dies, the job goes on and the
  next reconciler, once it holds the lock, finds it running in the facts
  (its pidfile) and re-attaches instead of starting a second one. The lock
  guards every observe → plan → act cycle; the pidfile guards the job.

A lock held by someone else is a wait (HostOutcome.WAITING, gated), never a
failure: "another reconciler (pid P on MACHINE, apply from REPO, since T) is
working on HOST". lockf -t 0 never waits on the host: the next run (the
daemon's next poll) tries again.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime

from reconciler import remote
from reconciler.transport.command import sh
from reconciler.transport.ssh import Connection, Session

#: sysexits(3) EX_TEMPFAIL: what lockf exits with when the lock is held.
EX_TEMPFAIL = 75

# $1 lock file, $2 who we are, $3 the holder's script. The holder writes $2 into
# the lock file (lockf holds its flock, the content is only informative), says
# "locked" and waits for stdin to close. When lockf finds the lock held it exits
# 75 without running the holder, and this prints who holds it.
_TAKE = (
    'lockf -k -s -t 0 "$1" sh -c "$3" sh "$1" "$2"; s=$?; '
    'if [ "$s" -eq 75 ]; then echo busy; cat "$1" 2>/dev/null; fi; exit "$s"'
)
_HOLDER = (
    'prev=$(tr "\\n" " " < "$1" 2>/dev/null); printf "%s\\n" "$2" > "$1"; '
    'printf "locked %s now=%s\\n" "$prev" "$(date +%s)"; cat > /dev/null; '
    'printf "released=%s\\n" "$(date +%s)" >> "$1"'
)
#: Seconds of slack when comparing the host's clock intervals with ours (both whole seconds).
_SLACK = 2


def identity(command: str, repo: str) -> str:
    """Who takes the lock, as the lock file shows it: ``key=value`` words on one line."""
    words = {
        "pid": str(os.getpid()),
        "machine": socket.gethostname(),
        "command": command,
        "repo": repo.replace(" ", "%20") or "-",
        "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return " ".join(f"{k}={v}" for k, v in words.items())


def age_of(observed_at: str | None) -> float | None:
    """Seconds since a UTC ``%Y-%m-%dT%H:%M:%SZ`` moment (None when not known)."""
    if not observed_at:
        return None
    try:
        moment = datetime.strptime(observed_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def default_command() -> str:
    """``apply``, ``run`` ...: the subcommand this process runs."""
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return args[0] if args else "reconciler"


def holder_words(text: str) -> str:
    """The lock file's content in words: ``pid 4242 on ops1 (apply from /srv/cfg, since ...)``."""
    fields = dict(w.split("=", 1) for w in text.split() if "=" in w)
    if "pid" not in fields:
        return "holder unknown"
    where = f"pid {fields['pid']} on {fields.get('machine', '?')}"
    extra = [f"{fields.get('command', '?')} from {fields.get('repo', '?').replace('%20', ' ')}"]
    if "since" in fields:
        extra.append(f"since {fields['since']}")
    return f"{where} ({', '.join(extra)})"


def same_process(previous: str, who: str) -> bool:
    """Whether the lock's previous holder was this very process (same pid and machine)."""

    def key(text: str) -> tuple[str | None, str | None]:
        fields = dict(w.split("=", 1) for w in text.split() if "=" in w)
        return fields.get("pid"), fields.get("machine")

    return key(previous) == key(who) and key(who) != (None, None)


def _stale(previous: str, who: str, age: float | None) -> bool:
    """Whether facts ``age`` seconds old may predate another holder's last act."""
    if same_process(previous, who):
        return False
    fields = dict(w.split("=", 1) for w in previous.split() if "=" in w)
    now, released = fields.get("now", ""), fields.get("released", "")
    if age is None or not now.isdigit() or not released.isdigit():
        return True  # a holder that died with lockf (SIGKILL) wrote no release time
    return int(now) - int(released) <= age + _SLACK


def take_command(who: str) -> list[str]:
    return sh(_TAKE, remote.HOST_LOCK, who, _HOLDER)


class HostLock:
    """The lock on one host, taken through ``conn`` (reconciler.transport.ssh.Connection.hold)."""

    def __init__(self, conn: Connection, who: str) -> None:
        self.conn = conn
        self.who = who
        self._session: Session | None = None
        #: someone else held the lock since we last did (or we never did): facts
        #: observed before this acquire may be stale
        self.others_since = True

    @property
    def held(self) -> bool:
        """Held by us right now (a reboot or a dropped connection ends it)."""
        return self._session is not None and self._session.alive

    def acquire(self, age: float | None = None) -> str | None:
        """Take it; None when taken, else who holds it, in words (raises TransportError).

        ``age``: seconds since the facts the caller plans from were observed.
        ``others_since`` then says whether they may be stale: another process held
        the lock and released it less than ``age`` ago (or it is not known when).
        """
        self.release()
        session, result = self.conn.hold(take_command(self.who), ready="locked")
        if session is not None:
            self._session = session
            said = next(ln for ln in result.stdout.splitlines() if ln.startswith("locked"))
            self.others_since = _stale(said.removeprefix("locked").strip(), self.who, age)
            return None
        lines = result.stdout.splitlines()
        if result.exit_code == EX_TEMPFAIL and lines[:1] == ["busy"]:
            return holder_words(" ".join(lines[1:]))
        problem = (result.stderr or result.stdout).strip() or f"exit {result.exit_code}"
        raise LockError(f"cannot take {remote.HOST_LOCK}: {problem}")

    def release(self) -> None:
        """Give it up and wait (bounded) until lockf has let it go (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            session.end()


class LockError(Exception):
    """The lock could not be taken for another reason than a holder (no lockf, a full /var)."""
