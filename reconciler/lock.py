"""One reconciler per config repository: an advisory ``flock`` on a file in its git dir.

``apply`` and the daemon both take :class:`RepoLock` before they touch hosts,
so two of them never run a rollout for the same repository at once. The lock
is ``flock(LOCK_EX | LOCK_NB)`` on ``<git common dir>/<name>.lock`` (for a
plain directory, ``<dir>/.<name>.lock``): the kernel drops it when the holder
exits, however it exits, so a killed reconciler never leaves a stale lock.
The file also says who holds it (pid, hostname, command, start time) for the
error message and for status displays; that text is only informative, the
``flock`` is the truth. The file is never deleted: unlinking a lock file
while another process waits on it would let two processes hold "the" lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.errors import LockHeld, RepoError
from reconciler.gitutil import common_git_dir

# A holder() probe takes the lock for microseconds; a real acquirer that
# collides with it retries this long before it calls the lock held.
_PROBE_GRACE = 0.2


def lock_path(repo: Path, name: str = "reconciler") -> Path:
    """Where the lock file of ``repo`` lives."""
    git_dir = common_git_dir(Path(repo))
    return git_dir / f"{name}.lock" if git_dir else Path(repo) / f".{name}.lock"


def _default_command() -> str:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    return args[0] if args else Path(sys.argv[0]).name


class RepoLock:
    """Context manager: hold the reconciler lock of ``repo`` or raise LockHeld."""

    def __init__(self, repo: Path, name: str = "reconciler", *, command: str | None = None) -> None:
        self.repo = Path(repo)
        self.name = name
        self.command = command or _default_command()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RepoLock:
        """Take the lock now; LockHeld if another process has it."""
        if self._fd is not None:
            raise RuntimeError("RepoLock is not reentrant")
        path = lock_path(self.repo, self.name)
        try:
            # Not O_TRUNC: the holder's details must survive until we own the lock.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RepoError(f"cannot create lock file {path}: {exc.strerror}") from exc
        try:
            deadline = time.monotonic() + _PROBE_GRACE
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockHeld(self._held_message(_read_holder(fd))) from None
                    time.sleep(0.01)
            info = {
                "pid": os.getpid(),
                "hostname": socket.gethostname(),
                "command": self.command,
                "started": datetime.now().astimezone().isoformat(timespec="seconds"),
                "repo": str(self.repo),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear the details first, so a reader never sees a gone holder as current.
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> RepoLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _held_message(self, holder: dict[str, Any] | None) -> str:
        who = "another process"
        if holder:
            who = f"pid {holder.get('pid', '?')}"
            if holder.get("hostname") not in (None, socket.gethostname()):
                who += f" on {holder['hostname']}"
            since = _since(str(holder.get("started", "")))
            who += f" ({holder.get('command', '?')}{', since ' + since if since else ''})"
        return f"another reconciler is running on {self.repo}: {who}; wait for it or stop it"

    @staticmethod
    def holder(repo: Path, name: str = "reconciler") -> dict[str, Any] | None:
        """Who holds the lock of ``repo`` (pid, hostname, command, started, repo), or None."""
        path = lock_path(Path(repo), name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RepoError(f"cannot read lock file {path}: {exc.strerror}") from exc
        try:
            try:
                # A shared lock is refused while anyone holds the exclusive one.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                # Held, but the holder has not written its details yet: still truthy.
                return _read_holder(fd) or {"pid": None, "command": None, "repo": str(repo)}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_holder(fd: int) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        if isinstance(data, dict):
            return data
    return None


def _since(started: str) -> str:
    try:
        moment = datetime.fromisoformat(started).astimezone()
    except ValueError:
        return ""
    today = datetime.now().astimezone().date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M:%S")
