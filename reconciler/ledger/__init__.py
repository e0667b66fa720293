"""The ledger: one commit per outcome on the config repo's status branch.

Written with git plumbing only (one ``fast-import`` per commit object, then
``update-ref NEW OLD``), so no work tree and no index is ever
touched: the ledger works on bare repositories and on checkouts with
uncommitted changes alike. ``update-ref`` with the old value is a
compare-and-swap; a writer that loses re-reads the tip and commits again on
top of it (bounded), so concurrent writers on one repository all land, once,
in a linear history.

With ``remote`` set (the daemon works on a local clone), each record is then
pushed with fast-forward semantics, which never drops a commit already on the
remote. A rejected push means another reconciler wrote first: fetch the
remote branch, replay the commits only we have on top of its tip (same
messages, same author dates, same file changes), and push again (bounded).

Commits carry the fixed identity of :data:`reconciler.gitutil.IDENTITY`,
whatever ``user.name`` says, so the audit trail is recognisably the
reconciler's. Message layout (trailers parsed back by ``git log``)::

    web1: installed build 3f2a9c1e0b7d (stable/14 5a3e9b1c2d4f) and healthy

    optional body

    Reconciler-Generation: <config commit>
    Reconciler-Buildset: lab
    Reconciler-Host: web1
    Reconciler-Stage: production
    Reconciler-Outcome: success
    Reconciler-Build: <build id>
    Reconciler-Actor: <user>@<host>     (who ran the reconciler, and where)
    Reconciler-Command: apply           (apply, run, init, release ...)

The last two come from the :class:`Ledger` (``actor``, ``command``), set by
the command that writes, so every record says who and where without each
writer naming itself; a replayed commit keeps its message, and so its trailers.

Errors: :class:`~reconciler.errors.LedgerError` (cannot read or write),
:class:`~reconciler.errors.LedgerConflict` (lost the race more times than the
retry bound), :class:`~reconciler.errors.RepoError` (not a repository).
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import LedgerConflict, LedgerError
from reconciler.gitutil import (
    BlobRef,
    GitResult,
    check_tree_path,
    commit_changes,
    git,
    identity_env,
    new_commit,
    require_repo,
    run_git,
)
from reconciler.ledger.records import LOG_FORMAT, TRAILERS, Entry, Record, default_actor, parse_log
from reconciler.ledger.remote import RemoteSync, Retry

__all__ = ["DEFAULT_BRANCH", "TRAILERS", "Entry", "Ledger", "Record", "default_actor"]

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "reconciler/status"
#: How far back ``record(once=...)`` looks before writing (newest entries first).
_ONCE_WINDOW = 200


_BAD_REF = re.compile(r"(^[-/.]|[/.]$|\.\.|//|@\{|[\x00-\x20\x7f~^:?*\[\\]|\.lock(/|$)|/\.)")


def _check_branch(branch: str) -> None:
    # The rules of git-check-ref-format, checked here so a bad name fails before any I/O.
    if not branch or branch == "@" or _BAD_REF.search(branch):
        raise LedgerError(f"invalid ledger branch name {branch!r}")


class Ledger(RemoteSync):
    """The status branch of one repository (optionally mirrored to a remote)."""

    def __init__(
        self,
        repo: Path,
        branch: str = DEFAULT_BRANCH,
        remote: str | None = None,
        *,
        attempts: int = 10,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_conflict: Callable[[], None] | None = None,
        actor: str | None = None,
        command: str | None = None,
    ) -> None:
        _check_branch(branch)
        if attempts < 1:
            raise LedgerError("attempts must be at least 1")
        self.repo = Path(repo)
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self.remote = remote
        self.attempts = attempts
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        #: Called each time another writer won a compare-and-swap (local ref or push);
        #: the daemon counts these (metric reconciler_ledger_push_conflicts_total).
        self.on_conflict = on_conflict
        #: Reconciler-Actor and Reconciler-Command of every record that names none.
        self.actor = actor
        self.command = command
        self._checked = False
        self._synced = False
        self._track: str | None = None
        self._sync_lock = threading.Lock()
        # What this instance last moved the branch to: the likely parent of its
        # next record, which saves a rev-parse per record; the CAS catches it
        # when another writer has moved the branch since.
        self._last_set: str | None = None

    # --- reading -------------------------------------------------------------------

    def head(self) -> str | None:
        """The branch tip, or None when there is no ledger yet."""
        self._sync_once()
        return self._tip()

    def read(self, path: str) -> str | None:
        """The text of ``path`` in the tip's tree; None if there is no ledger or no such file."""
        check_tree_path(path, LedgerError)
        tip = self.head()
        if tip is None:
            return None
        out = self._git_result("cat-file", "--batch", input=f"{tip}:{path}\n".encode())
        header, _, rest = out.stdout.partition(b"\n")
        fields = header.decode("utf-8", errors="replace").split()
        if out.returncode != 0 or not fields:
            raise LedgerError(f"cannot read {path} from {self.branch}: {out.message()}")
        if fields[-1] == "missing":
            return None
        if fields[1] != "blob":
            raise LedgerError(f"{path} on {self.branch} is a {fields[1]}, not a file")
        size = int(fields[2])
        try:
            return rest[:size].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LedgerError(f"{path} on {self.branch} is not UTF-8 text") from exc

    def read_json(self, path: str) -> Any | None:
        """``read(path)`` parsed as JSON; None if absent."""
        text = self.read(path)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise LedgerError(f"{path} on {self.branch} is not valid JSON: {exc}") from exc

    def entries(
        self,
        *,
        host: str | None = None,
        limit: int | None = None,
        buildset: str | None = None,
    ) -> list[Entry]:
        """Ledger commits, newest first, optionally only one host's or one build set's."""
        tip = self.head()
        if tip is None or (limit is not None and limit <= 0):
            return []
        args = ["log", f"--format={LOG_FORMAT}"]
        wanted = {k: v for k, v in (("host", host), ("buildset", buildset)) if v is not None}
        if wanted:
            # git narrows by substring; the exact match is checked below.
            args += ["--fixed-strings", "--all-match"]
            args += [f"--grep=Reconciler-{k.capitalize()}: {v}" for k, v in wanted.items()]
        elif limit is not None:
            args.append(f"-n{limit}")
        args += [tip, "--"]
        result: list[Entry] = []
        for entry in parse_log(self._git(*args)):
            if all(entry.trailers.get(k) == v for k, v in wanted.items()):
                result.append(entry)
                if limit is not None and len(result) >= limit:
                    break
        return result

    # --- writing -------------------------------------------------------------------

    def record(self, record: Record, *, once: Callable[[Entry], bool] | None = None) -> str:
        """Commit ``record`` on the branch (and push it when ``remote`` is set); its sha.

        With ``once``, the record is written only if no entry on the branch
        matches it: the sha of the matching entry is returned instead. The
        question is asked again each time a push loses the race, of the commits
        the winners pushed, so that writers recording the same fact at once
        leave exactly one record of it (the daemon's replicas all see a new
        config commit; one ``validated`` record says it was accepted).

        Raises LedgerConflict when other writers won the race ``attempts`` times in a row.
        """
        if record.actor is None and self.actor is not None:
            record = replace(record, actor=self.actor)
        if record.command is None and self.command is not None:
            record = replace(record, command=self.command)
        message = record.message()
        changes: dict[str, bytes | BlobRef | None] = {}
        for path, text in record.files.items():
            check_tree_path(path, LedgerError)
            changes[path] = text.encode("utf-8")
        if not self._sync_once() and self.remote is not None:
            # Start from the remote's tip: a writer that only pushes its own
            # local tip would win every race against one that must replay first.
            self._refresh()
        if once is not None:
            # The recent past is enough here: the race itself is settled in _publish.
            done = next((e.commit for e in self.entries(limit=_ONCE_WINDOW) if once(e)), None)
            if done is not None:
                return done
        env = identity_env(self._now())
        mine = self._commit_cas(lambda parent: self._commit(parent, changes, message, env))
        if self.remote is None:
            return mine
        return self._publish(mine, once)

    # --- internals -----------------------------------------------------------------

    def _sync_once(self) -> bool:
        """Check the repository, and sync with the remote on first use; True if it synced now."""
        if not self._checked:
            require_repo(self.repo, LedgerError)
            self._checked = True
        if self.remote is None or self._synced:
            return False
        try:
            self.sync()
        except LedgerError as exc:
            # Reading the local copy beats failing when the remote is briefly away.
            log.warning("ledger: cannot sync with %s, using the local copy: %s", self.remote, exc)
        return True

    def _refresh(self) -> None:
        """One fetch-and-integrate, best effort: the push after it is what must succeed."""
        try:
            self._integrate(self._fetch(), None)
        except Retry:
            pass
        except LedgerError as exc:
            log.warning("ledger: cannot fetch from %s: %s", self.remote, exc)

    def _git(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        return git(self.repo, *args, input=input, env=env, error=LedgerError)

    def _git_result(
        self, *args: str, input: bytes | None = None, timeout: float = 60.0
    ) -> GitResult:
        return run_git(self.repo, args, input=input, timeout=timeout, error=LedgerError)

    def _tip(self) -> str | None:
        out = self._git_result("rev-parse", "--verify", "--quiet", f"{self.ref}^{{commit}}")
        if out.returncode == 0:
            return out.text.strip()
        if out.returncode == 1:
            return None
        raise LedgerError(f"cannot read {self.branch} in {self.repo}: {out.message()}")

    def _commit(
        self,
        parent: str | None,
        changes: Mapping[str, bytes | BlobRef | None],
        message: str,
        env: Mapping[str, str],
    ) -> str:
        return new_commit(self.repo, parent, changes, message, env, error=LedgerError)

    def _commit_cas(self, make: Callable[[str | None], str]) -> str:
        """Build a commit on the current tip with ``make`` and move the branch to it (CAS)."""
        for attempt in range(self.attempts):
            old = self._last_set if attempt == 0 and self._last_set else self._tip()
            new = make(old)
            if self._update_ref(new, old):
                return new
            self._conflict()
            self._backoff(attempt)
        raise LedgerConflict(
            f"{self.branch} in {self.repo} kept moving: lost the race {self.attempts} times"
        )

    def _update_ref(self, new: str, old: str | None) -> bool:
        # An empty old value means "must not exist yet": a concurrent creator loses.
        out = self._git_result("update-ref", "-m", "reconciler: ledger", self.ref, new, old or "")
        if out.returncode == 0:
            self._last_set = new
            return True
        self._last_set = None
        if self._tip() != old or "File exists" in out.stderr:
            return False  # someone else moved the branch, or holds its lock right now
        raise LedgerError(f"cannot update {self.branch} in {self.repo}: {out.message()}")

    def _conflict(self) -> None:
        if self.on_conflict is not None:
            self.on_conflict()

    def _backoff(self, attempt: int, base: float = 0.02, cap: float = 1.0) -> None:
        # Full jitter: racing writers spread out instead of colliding again in step.
        self._sleep(random.uniform(0, min(cap, base * 2**attempt)))

    def _replay(self, commit: str, onto: str) -> str:
        """``commit``'s file changes and message as a new commit on ``onto``."""
        meta = self._git("log", "-1", "--format=%an%x00%ae%x00%ad%x00%B", "--date=raw", commit)
        name, email, date, message = meta.split("\0", 3)
        changes = commit_changes(self.repo, commit, error=LedgerError)
        env = identity_env(self._now())
        env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_AUTHOR_DATE=date)
        return self._commit(onto, changes, message.rstrip() + "\n", env)
