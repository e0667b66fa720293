"""What ``plan``, ``status`` and ``apply`` look at: one commit, the same for all three.

Default: the tracked branch's tip. In a checkout that is ``HEAD`` (what is
checked out); in a bare repository, ``settings.branch`` (``HEAD`` when there
is no such branch). ``--rev REV`` names another commit; ``--worktree`` reads
the files on disk instead. Whenever the files on disk differ from the commit
planned (or are planned instead of a commit), it is said on stderr, so
nobody reviews one thing and applies another.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from reconciler.config.repofiles import resolve_commit
from reconciler.errors import RepoError, UsageError
from reconciler.gitutil import common_git_dir, run_git

#: Changed paths named in a warning before "...".
_SHOWN = 5


@dataclass(frozen=True)
class Choice:
    """The commit chosen (None: the files on disk) and how to name it in messages."""

    commit: str | None
    label: str


def _is_bare(repo: Path) -> bool:
    out = run_git(repo, ("rev-parse", "--is-bare-repository"))
    return out.returncode == 0 and out.text.strip() == "true"


def _changes(repo: Path) -> list[str]:
    """``git status --porcelain`` of the work tree (uncommitted and untracked files)."""
    out = run_git(repo, ("status", "--porcelain", "--untracked-files=all"))
    if out.returncode != 0:
        return []
    return [line for line in out.text.splitlines() if line.strip()]


def _shown(changes: list[str]) -> str:
    names = [line[3:] for line in changes[:_SHOWN]]
    more = f" and {len(changes) - _SHOWN} more" if len(changes) > _SHOWN else ""
    return ", ".join(names) + more


def warn(message: str) -> None:
    print(f"reconciler: warning: {message}", file=sys.stderr)


def choose(
    repo: Path,
    *,
    branch: str,
    rev: str | None,
    worktree: bool,
    verb: str = "planning",
    commits_only: bool = False,
) -> Choice:
    """The commit to plan or apply in ``repo``, saying on stderr when the files on disk differ.

    ``commits_only`` (apply): a plain directory is an error, ``--worktree`` or not.
    """
    if rev is not None and worktree:
        raise UsageError("--rev and --worktree exclude each other")
    git_dir = common_git_dir(repo)
    if worktree and commits_only and git_dir is None:
        raise RepoError(
            f"{repo} is not a git repository; {verb} records its outcomes in the config "
            "repo's ledger, a branch of it (git init and commit it)"
        )
    if worktree:
        if git_dir is not None and not _is_bare(repo):
            changes = _changes(repo)
            also = f" (uncommitted: {_shown(changes)})" if changes else ""
            warn(f"--worktree: {verb} the files on disk in {repo}{also}, not a commit")
        elif git_dir is not None:
            raise UsageError(
                f"{repo} is a bare repository: it has no files on disk (drop --worktree)"
            )
        return Choice(None, "the files on disk")
    if git_dir is None:
        if commits_only or rev is not None:
            raise RepoError(
                f"{repo} is not a git repository; {verb} needs a commit of the config repo "
                "(git init and commit it, or use --worktree)"
            )
        warn(f"{repo} is not a git repository: {verb} the files on disk")
        return Choice(None, "the files on disk")
    bare = _is_bare(repo)
    wanted = rev or ("HEAD" if not bare else branch)
    try:
        commit = resolve_commit(repo, wanted)
    except RepoError:
        if rev is None and bare:
            commit = resolve_commit(repo, "HEAD")  # no such branch: the repository's default
            wanted = "HEAD"
        elif rev is None:
            raise RepoError(f"{repo}: no commit yet (commit the config repo first)") from None
        else:
            raise
    label = f"{wanted} ({commit[:12]})" if wanted != commit else commit[:12]
    if not bare and rev is None:
        changes = _changes(repo)
        if changes:
            warn(
                f"the files on disk in {repo} differ from {label}: {_shown(changes)}; "
                f"{verb} {wanted}, not them: commit the change, or pass --worktree"
            )
    return Choice(commit, label)
