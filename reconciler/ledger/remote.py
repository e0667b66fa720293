"""The ledger's remote half: fetch, replay on the remote's tip, push as a fast-forward.

A mixin of :class:`reconciler.ledger.Ledger`, which provides the local
compare-and-swap (``_tip``, ``_update_ref``, ``_commit``) this builds on. A
rejected push means another writer got there first: fetch, replay the commits
only we have on top of the remote's tip (same messages, author dates, file
changes) and push again, bounded by ``attempts``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from reconciler.errors import LedgerConflict, LedgerError
from reconciler.gitutil import GitResult, is_ancestor
from reconciler.ledger.records import LOG_FORMAT, Entry, parse_log

log = logging.getLogger("reconciler.ledger")

NETWORK_TIMEOUT = 120.0


class Retry(Exception):
    """A transient race inside one attempt; the caller backs off and tries again."""


class RemoteSync:
    """Syncing the status branch with ``remote``; the Ledger provides the rest."""

    repo: Path
    branch: str
    ref: str
    remote: str | None
    attempts: int
    _track: str | None
    _synced: bool
    _sync_lock: threading.Lock
    _last_set: str | None

    def _tip(self) -> str | None:
        raise NotImplementedError

    def _update_ref(self, new: str, old: str | None) -> bool:
        raise NotImplementedError

    def _replay(self, commit: str, onto: str) -> str:
        raise NotImplementedError

    def _git(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        raise NotImplementedError

    def _git_result(
        self, *args: str, input: bytes | None = None, timeout: float = 60.0
    ) -> GitResult:
        raise NotImplementedError

    def _conflict(self) -> None:
        raise NotImplementedError

    def _backoff(self, attempt: int, base: float = 0.02, cap: float = 1.0) -> None:
        raise NotImplementedError

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
                except Retry:
                    self._backoff(attempt)
            else:
                raise LedgerConflict(f"cannot sync {self.branch} with {self.remote}: busy")
        with self._sync_lock:
            self._synced = True
        return self._tip()

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
            except Retry as exc:
                log.debug("ledger: busy (%s); trying again", exc)
        raise LedgerConflict(
            f"{self.branch}: {self.remote} kept moving: lost the push race {self.attempts} times"
        )

    def _push(self, tip: str) -> bool:
        """Push ``tip`` as a fast-forward; False when another writer got there first."""
        assert self.remote is not None
        out = self._git_result(
            "push", "--porcelain", "--no-verify", self.remote, f"{tip}:{self.ref}",
            timeout=NETWORK_TIMEOUT,
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
        out = self._git("log", f"--format={LOG_FORMAT}", remote_tip, f"^{mine}", "--")
        return next((e.commit for e in parse_log(out) if once(e)), None)

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
                raise Retry("withdraw")
        elif not self._update_ref(parent.text.strip(), mine):
            raise Retry("withdraw")
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
            f"+{self.ref}:{track}", timeout=NETWORK_TIMEOUT,
        )  # fmt: skip
        if out.returncode != 0:
            if "couldn't find remote ref" in out.stderr:
                return None
            if "cannot lock ref" in out.stderr or "File exists" in out.stderr:
                raise Retry("fetch")  # another thread of ours is fetching into the same ref
            raise LedgerError(f"cannot fetch {self.branch} from {self.remote}: {out.message()}")
        return self._git("rev-parse", "--verify", f"{track}^{{commit}}")

    def _integrate(self, remote_tip: str | None, mine: str | None) -> str | None:
        """Put the local branch on top of ``remote_tip``; where ``mine`` ended up."""
        if remote_tip is None:
            return mine
        local = self._tip()
        if local is None or is_ancestor(self.repo, local, remote_tip, error=LedgerError):
            if local != remote_tip and not self._update_ref(remote_tip, local):
                raise Retry("fast-forward")
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
            raise Retry("replay")
        return moved.get(mine, mine) if mine else None
