"""Where a command reads and writes the ledger: one audit, wherever it runs.

A config repo with an ``origin`` remote is a clone: its ledger lives on the
origin, where the daemon writes (``Ledger(..., remote="origin")``, the same
compare-and-swap push and replay), so ``git log reconciler/status`` is one
history whoever applied. A repo without an ``origin`` is the config repo
itself, and its own status branch is the ledger.

Writers (``apply``) check that the origin answers before any host is
touched; when it does not, they refuse, unless ``--local-ledger`` says out
loud that this clone's ledger will differ from the origin's. Readers
(``plan``, ``status``) fetch the origin's ledger too, and fall back on the
clone's copy with a warning.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from reconciler.errors import LedgerError, RepoError
from reconciler.gitutil import common_git_dir, run_git
from reconciler.ledger import Ledger, default_actor

ORIGIN = "origin"


def origin_url(repo: Path) -> str | None:
    """The URL of ``repo``'s ``origin`` remote; None for a plain directory or no such remote."""
    try:
        if common_git_dir(repo) is None:
            return None
    except RepoError:  # not a directory at all: nothing to push to
        return None
    out = run_git(repo, ("config", "--get", f"remote.{ORIGIN}.url"))
    url = out.text.strip() if out.returncode == 0 else ""
    return url or None


def local_origin(repo: Path) -> Path | None:
    """The origin's directory when it is a repository on this machine (for its lock)."""
    url = origin_url(repo)
    if url is None or ("://" in url and not url.startswith("file://")):
        return None
    path = Path(unquote(urlparse(url).path)) if url.startswith("file://") else Path(url)
    if not path.is_absolute():
        path = (repo / path).resolve()
    return path if path.is_dir() else None


def _from_last_fetch(repo: Path, branch: str) -> None:
    """Start the clone's own ledger branch where the origin's was last fetched (git clone).

    Without it a ledger written with the origin out of reach would begin a
    history of its own, unrelated to the origin's and without its progress.
    """
    local = run_git(repo, ("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"))
    if local.returncode == 0:
        return
    fetched = run_git(repo, ("rev-parse", "--verify", "--quiet", f"refs/remotes/{ORIGIN}/{branch}"))
    if fetched.returncode == 0:
        run_git(repo, ("update-ref", f"refs/heads/{branch}", fetched.text.strip(), ""))


def reading_ledger(repo: Path, branch: str) -> Ledger:
    """The ledger to read: the origin's when there is one (fetched now), else the repo's own."""
    if origin_url(repo) is None:
        return Ledger(repo, branch)
    ledger = Ledger(repo, branch, remote=ORIGIN)
    try:
        ledger.sync()
    except LedgerError as exc:
        print(
            f"reconciler: warning: cannot fetch the ledger from {ORIGIN} ({exc}); "
            "using this clone's copy, which may be behind",
            file=sys.stderr,
        )
        _from_last_fetch(repo, branch)
        return Ledger(repo, branch)
    return ledger


def writing_ledger(repo: Path, branch: str, *, command: str, local: bool = False) -> Ledger:
    """The ledger ``command`` records in; raises LedgerError when the origin cannot be reached.

    Called before any host is touched, so a refusal changes nothing anywhere.
    """
    actor = default_actor()
    url = origin_url(repo)
    if url is None:
        return Ledger(repo, branch, actor=actor, command=command)
    if local:
        print(
            f"reconciler: warning: --local-ledger: outcomes are recorded only in {repo} "
            f"(branch {branch}), not on {ORIGIN} ({url}); the daemon's audit and this one "
            f"differ until you push it (git push {ORIGIN} {branch})",
            file=sys.stderr,
        )
        _from_last_fetch(repo, branch)
        return Ledger(repo, branch, actor=actor, command=command)
    ledger = Ledger(repo, branch, remote=ORIGIN, actor=actor, command=command)
    try:
        ledger.sync()
    except LedgerError as exc:
        raise LedgerError(
            f"cannot reach the config repo's {ORIGIN} ({url}) to record the ledger: {exc}; "
            f"every {command} records its outcomes on {ORIGIN}'s {branch}, beside the "
            "daemon's (one audit). Fix the remote, or pass --local-ledger to record them "
            "in this clone only"
        ) from exc
    return ledger
