"""The ledger records the daemon itself writes (the engine writes the rollout's own).

Pure functions from what happened to a :class:`~reconciler.ledger.Record`:
a commit refused by the signature policy (stage ``daemon``), a commit whose
config is invalid or unreadable (stage ``config``, every problem in the body),
and a commit accepted for rollout (``validated``). Each subject quotes the
config commit's own subject (``title``), so the audit says which change it was.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.config.model import Config
from reconciler.daemon.trust import Verdict
from reconciler.errors import ConfigInvalid
from reconciler.ledger import Record


def short(sha: str) -> str:
    return sha[:12]


#: Longest config commit subject quoted in a record's subject.
TITLE_MAX = 72


def _quoted(title: str) -> str:
    """': "<the config commit's subject>"', shortened; "" without one."""
    flat = " ".join(title.split())
    if not flat:
        return ""
    return f' ("{flat if len(flat) <= TITLE_MAX else flat[: TITLE_MAX - 3] + "..."}")'


def untrusted(
    commit: str, verdict: Verdict, allowed_signers: Path | None, *, title: str = ""
) -> Record:
    """The refusal of a commit that is not signed by an allowed signer."""
    where = str(allowed_signers) if allowed_signers else "the allowed signers file"
    return Record(
        subject=f"refused config commit {short(commit)}{_quoted(title)}: "
        "not signed by an allowed signer",
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


def invalid(commit: str, error: ConfigInvalid, *, title: str = "") -> Record:
    """The rejection of a commit whose config fails validation: every problem, one per line."""
    return Record(
        subject=f"rejected config commit {short(commit)}{_quoted(title)}: {error}",
        generation=commit,
        buildset=None,
        host=None,
        stage="config",
        outcome="rejected",
        body="\n".join(str(problem) for problem in error.problems),
    )


def unreadable(commit: str, reason: str, *, title: str = "") -> Record:
    """The rejection of a commit whose config cannot be read at all."""
    return Record(
        subject=f"rejected config commit {short(commit)}{_quoted(title)}: cannot be read",
        generation=commit,
        buildset=None,
        host=None,
        stage="config",
        outcome="rejected",
        body=reason,
    )


def validated(config: Config, *, title: str = "") -> Record:
    """A commit accepted for rollout (trusted when required, valid)."""
    commit = config.commit or "worktree"
    return Record(
        subject=f"config commit {short(commit)}{_quoted(title)} validated; rolling out",
        generation=commit,
        buildset=None,
        host=None,
        stage="config",
        outcome="validated",
        body="Build sets: " + ", ".join(bs.name for bs in config.buildsets),
    )
