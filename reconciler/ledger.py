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

import getpass
import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
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
    is_ancestor,
    new_commit,
    require_repo,
    run_git,
)

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "reconciler/status"

#: Record attribute -> trailer key, in the order they are written.
TRAILERS = (
    ("generation", "Reconciler-Generation"),
    ("buildset", "Reconciler-Buildset"),
    ("host", "Reconciler-Host"),
    ("stage", "Reconciler-Stage"),
    ("outcome", "Reconciler-Outcome"),
    ("build", "Reconciler-Build"),
    ("step", "Reconciler-Step"),
    ("packages", "Reconciler-Packages"),
    ("actor", "Reconciler-Actor"),
    ("command", "Reconciler-Command"),
)
_PREFIX = "reconciler-"
_NETWORK_TIMEOUT = 120.0
#: How far back ``record(once=...)`` looks before writing (newest entries first).
_ONCE_WINDOW = 200
#: What :meth:`Ledger._parse_log` reads: sha, date, subject, body, trailers.
_LOG_FORMAT = "%H%x00%aI%x00%s%x00%b%x00%(trailers:only,unfold)%x00"


@dataclass(frozen=True)
class Record:
    """One outcome, to become one commit on the status branch."""

    subject: str
    generation: str  # config repo commit (40 hex) or "worktree"
    buildset: str | None
    host: str | None
    stage: str | None  # source|build|test|production|config|daemon
    # success|failure|started|rolled-back|halted|rejected|validated|drift|healed|skipped
    outcome: str
    build: str | None = None
    body: str = ""
    files: Mapping[str, str] = field(default_factory=dict, hash=False)  # tree path -> text
    step: str | None = None  # the plan step kind this outcome belongs to
    actor: str | None = None  # <user>@<host> that wrote it (default: the ledger's)
    command: str | None = None  # apply, run, init, release ... (default: the ledger's)
    packages: str | None = None  # the package set id the outcome belongs to (issue 11)

    def message(self) -> str:
        """The commit message: subject, optional body, trailers."""
        subject = " ".join(self.subject.split())
        if not subject:
            raise LedgerError("a ledger record needs a subject")
        lines = []
        for attr, key in TRAILERS:
            value = getattr(self, attr)
            if value is None:
                continue
            value = str(value)
            if not value or value != value.strip() or "\n" in value:
                raise LedgerError(f"ledger trailer {key} must be one non-empty line, not {value!r}")
            lines.append(f"{key}: {value}")
        parts = [subject]
        body = self.body.strip("\n")
        if body.strip():
            parts.append(body)
        parts.append("\n".join(lines))
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Entry:
    """One ledger commit, read back."""

    commit: str
    time: datetime  # author date: when the outcome was recorded
    subject: str
    body: str
    # Reconciler-* keys without the prefix, lower-case
    trailers: Mapping[str, str] = field(hash=False)

    @property
    def outcome(self) -> str | None:
        return self.trailers.get("outcome")

    @property
    def host(self) -> str | None:
        return self.trailers.get("host")

    @property
    def buildset(self) -> str | None:
        return self.trailers.get("buildset")

    @property
    def stage(self) -> str | None:
        return self.trailers.get("stage")

    @property
    def generation(self) -> str | None:
        return self.trailers.get("generation")

    @property
    def build(self) -> str | None:
        return self.trailers.get("build")

    @property
    def step(self) -> str | None:
        return self.trailers.get("step")

    @property
    def actor(self) -> str | None:
        return self.trailers.get("actor")

    @property
    def packages(self) -> str | None:
        return self.trailers.get("packages")

    @property
    def command(self) -> str | None:
        return self.trailers.get("command")


def default_actor() -> str:
    """``<user>@<host>`` of this process, for the Reconciler-Actor trailer."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container without /etc/passwd entry)
        user = str(os.getuid())
    host = socket.gethostname() or "localhost"
    return "".join(f"{user}@{host}".split()) or "unknown"


_BAD_REF = re.compile(r"(^[-/.]|[/.]$|\.\.|//|@\{|[\x00-\x20\x7f~^:?*\[\\]|\.lock(/|$)|/\.)")


def _check_branch(branch: str) -> None:
    # The rules of git-check-ref-format, checked here so a bad name fails before any I/O.
    if not branch or branch == "@" or _BAD_REF.search(branch):
        raise LedgerError(f"invalid ledger branch name {branch!r}")


class Ledger:
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
        args = ["log", f"--format={_LOG_FORMAT}"]
        wanted = {k: v for k, v in (("host", host), ("buildset", buildset)) if v is not None}
        if wanted:
            # git narrows by substring; the exact match is checked below.
            args += ["--fixed-strings", "--all-match"]
            args += [f"--grep=Reconciler-{k.capitalize()}: {v}" for k, v in wanted.items()]
        elif limit is not None:
            args.append(f"-n{limit}")
        args += [tip, "--"]
        result: list[Entry] = []
        for entry in self._parse_log(self._git(*args)):
            if all(entry.trailers.get(k) == v for k, v in wanted.items()):
                result.append(entry)
                if limit is not None and len(result) >= limit:
                    break
        return result

    @staticmethod
    def _parse_log(out: str) -> Iterator[Entry]:
        fields = out.split("\0")
        for i in range(0, len(fields) - 4, 5):
            commit, date, subject, body, trailer_text = fields[i : i + 5]
            trailers: dict[str, str] = {}
            for line in trailer_text.splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip().lower().startswith(_PREFIX):
                    trailers[key.strip().lower()[len(_PREFIX) :]] = value.strip()
            yield Entry(
                commit=commit.strip(),
                time=datetime.fromisoformat(date),
                subject=subject,
                body=_strip_trailer_block(body) if trailer_text.strip() else body.strip("\n"),
                trailers=trailers,
            )

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

    def sync(self) -> str | None:
        """Fetch the remote branch and put the local one on top of it; the new tip.

        Local commits the remote lacks are replayed on the remote's tip, to be
        pushed by the next :meth:`record`. Without a remote this only reads the tip.
        """
        if self.remote is not None:
            for attempt in range(self.attempts):
                try:
                    self._integrate(self._fetch(), None)
                    break
                except _Retry:
                    self._backoff(attempt)
            else:
                raise LedgerConflict(f"cannot sync {self.branch} with {self.remote}: busy")
        with self._sync_lock:
            self._synced = True
        return self._tip()

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
        except _Retry:
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

    # --- remote --------------------------------------------------------------------

    def _publish(self, mine: str, once: Callable[[Entry], bool] | None = None) -> str:
        assert self.remote is not None
        done: str | None = None  # another writer's entry that made ``mine`` redundant
        for attempt in range(self.attempts):
            try:
                if attempt:
                    # Back off first, then fetch, replay and push at once: the window
                    # in which another writer can invalidate our replay stays short.
                    # The backoff grows (with jitter) so that writers pushing in step
                    # fall out of step; a push costs more than a local update-ref.
                    self._backoff(attempt - 1, base=0.05, cap=2.0)
                    remote_tip = self._fetch()
                    if once is not None and done is None:
                        found = self._pushed_by_others(remote_tip, mine, once)
                        if found is not None and self._withdraw(mine):
                            done = found
                    mine = self._integrate(remote_tip, None if done else mine) or mine
                tip = self._tip()
                if tip is None or self._push(tip):
                    return done or mine
                self._conflict()
                log.debug("ledger: %s moved on %s; replaying on its tip", self.branch, self.remote)
            except _Retry as exc:
                log.debug("ledger: busy (%s); trying again", exc)
        raise LedgerConflict(
            f"{self.branch}: {self.remote} kept moving: lost the push race {self.attempts} times"
        )

    def _push(self, tip: str) -> bool:
        """Push ``tip`` as a fast-forward; False when another writer got there first."""
        assert self.remote is not None
        out = self._git_result(
            "push", "--porcelain", "--no-verify", self.remote, f"{tip}:{self.ref}",
            timeout=_NETWORK_TIMEOUT,
        )  # fmt: skip
        for line in out.text.splitlines():
            flag, _, rest = line.partition("\t")
            refs, _, summary = rest.partition("\t")
            if not refs.endswith(f":{self.ref}"):
                continue
            if flag in (" ", "+", "*", "=") and out.returncode == 0:
                return True
            log.debug("ledger: push %s: %s %s", self.remote, flag, summary)
            if flag == "!" and "[rejected]" in summary:
                return False  # non-fast-forward / fetch first: the remote moved
            if flag == "!" and re.search(
                r"lock|expected|old value|stale|failed to update ref", summary
            ):
                return False  # the remote's own compare-and-swap failed: same thing
            raise LedgerError(f"{self.remote} refused the ledger push: {summary.strip()}")
        raise LedgerError(f"cannot push {self.branch} to {self.remote}: {out.message()}")

    def _pushed_by_others(
        self, remote_tip: str | None, mine: str, once: Callable[[Entry], bool]
    ) -> str | None:
        """The first commit the remote has and ``mine`` lacks that ``once`` matches."""
        if remote_tip is None:
            return None
        out = self._git("log", f"--format={_LOG_FORMAT}", remote_tip, f"^{mine}", "--")
        return next((e.commit for e in self._parse_log(out) if once(e)), None)

    def _withdraw(self, mine: str) -> bool:
        """Take the unpushed ``mine`` off the local branch again; False if it is not the tip.

        (Not the tip: another thread of ours has committed on it since. Then
        ``mine`` stays and is pushed with theirs, a repeated fact rather than a lost one.)
        """
        if self._tip() != mine:
            return False
        parent = self._git_result("rev-parse", "--verify", "--quiet", f"{mine}^1")
        if parent.returncode != 0:  # the branch's first commit: no branch without it
            if self._git_result("update-ref", "-d", self.ref, mine).returncode != 0:
                raise _Retry("withdraw")
        elif not self._update_ref(parent.text.strip(), mine):
            raise _Retry("withdraw")
        self._last_set = None
        return True

    def _tracking_ref(self) -> str:
        """Where fetched tips go: the usual remote-tracking ref for a named remote."""
        if self._track is None:
            known = self._git_result("config", "--get", f"remote.{self.remote}.url")
            if known.returncode == 0 and "/" not in str(self.remote):
                self._track = f"refs/remotes/{self.remote}/{self.branch}"
            else:  # a URL: keep its tip out of the user's namespaces
                self._track = f"refs/reconciler/remote/{self.branch}"
        return self._track

    def _fetch(self) -> str | None:
        """Fetch the remote branch; its tip, or None when the remote has no ledger yet."""
        assert self.remote is not None
        track = self._tracking_ref()
        out = self._git_result(
            "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", self.remote,
            f"+{self.ref}:{track}", timeout=_NETWORK_TIMEOUT,
        )  # fmt: skip
        if out.returncode != 0:
            if "couldn't find remote ref" in out.stderr:
                return None
            if "cannot lock ref" in out.stderr or "File exists" in out.stderr:
                raise _Retry("fetch")  # another thread of ours is fetching into the same ref
            raise LedgerError(f"cannot fetch {self.branch} from {self.remote}: {out.message()}")
        return self._git("rev-parse", "--verify", f"{track}^{{commit}}")

    def _integrate(self, remote_tip: str | None, mine: str | None) -> str | None:
        """Put the local branch on top of ``remote_tip``; where ``mine`` ended up."""
        if remote_tip is None:
            return mine
        local = self._tip()
        if local is None or is_ancestor(self.repo, local, remote_tip, error=LedgerError):
            if local != remote_tip and not self._update_ref(remote_tip, local):
                raise _Retry("fast-forward")
            return mine
        if is_ancestor(self.repo, remote_tip, local, error=LedgerError):
            return mine  # we are ahead: the push will fast-forward
        moved: dict[str, str] = {}
        base = remote_tip
        only_ours = self._git("rev-list", "--reverse", "--no-merges", local, f"^{remote_tip}", "--")
        for commit in only_ours.split():
            base = self._replay(commit, base)
            moved[commit] = base
        if not self._update_ref(base, local):
            raise _Retry("replay")
        return moved.get(mine, mine) if mine else None

    def _replay(self, commit: str, onto: str) -> str:
        """``commit``'s file changes and message as a new commit on ``onto``."""
        meta = self._git("log", "-1", "--format=%an%x00%ae%x00%ad%x00%B", "--date=raw", commit)
        name, email, date, message = meta.split("\0", 3)
        changes = commit_changes(self.repo, commit, error=LedgerError)
        env = identity_env(self._now())
        env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_AUTHOR_DATE=date)
        return self._commit(onto, changes, message.rstrip() + "\n", env)


class _Retry(Exception):
    """A transient race inside one attempt; the caller backs off and tries again."""


def _strip_trailer_block(body: str) -> str:
    """The body without its last paragraph, which git recognised as the trailers."""
    paragraphs = re.split(r"\n[ \t]*\n", body.strip("\n"))
    return "\n\n".join(paragraphs[:-1]).strip("\n")
