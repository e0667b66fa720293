"""The ledger records the daemon itself writes (the engine writes the rollout's own).

Pure functions from what happened to a :class:`~reconciler.ledger.Record`:
a commit refused by the signature policy (stage ``daemon``), a commit whose
config is invalid or unreadable (stage ``config``, every problem in the body),
and a commit accepted for rollout (``validated``).
"""

from __future__ import annotations

from pathlib import Path

from reconciler.config.model import Config
from reconciler.daemon.trust import Verdict
from reconciler.errors import ConfigInvalid
from reconciler.ledger import Record


def short(sha: str) -> str:
    return sha[:12]


def untrusted(commit: str, verdict: Verdict, allowed_signers: Path | None) -> Record:
    """The refusal of a commit that is not signed by an allowed signer."""
    where = str(allowed_signers) if allowed_signers else "the allowed signers file"
    return Record(
        subject=f"refused config commit {short(commit)}: not signed by an allowed signer",
        generation=commit,
        buildset=None,
        host=None,
        stage="daemon",
        outcome="rejected",
        body=(
            f"{verdict.reason}.\n\ngit says: {verdict.detail or 'nothing'}\n\n"
            f"The commit was not applied. Sign it (git commit -S) with a key listed in {where} "
            "and push again."
        ),
    )


def invalid(commit: str, error: ConfigInvalid) -> Record:
    """The rejection of a commit whose config fails validation: every problem, one per line."""
    return Record(
        subject=f"rejected config commit {short(commit)}: {error}",
        generation=commit,
        buildset=None,
        host=None,
        stage="config",
        outcome="rejected",
        body="\n".join(str(problem) for problem in error.problems),
    )


def unreadable(commit: str, reason: str) -> Record:
    """The rejection of a commit whose config cannot be read at all."""
    return Record(
        subject=f"rejected config commit {short(commit)}: cannot be read",
        generation=commit,
        buildset=None,
        host=None,
        stage="config",
        outcome="rejected",
        body=reason,
    )


def validated(config: Config) -> Record:
    """A commit accepted for rollout (trusted when required, valid)."""
    commit = config.commit or "worktree"
    return Record(
        subject=f"config commit {short(commit)} validated; rolling out",
        generation=commit,
        buildset=None,
        host=None,
        stage="config",
        outcome="validated",
        body="Build sets: " + ", ".join(bs.name for bs in config.buildsets),
    )
