"""Commit trust: is a config repo commit signed by someone the administrator allows?

Uses git's own signature checking, nothing home-made:

    git -c gpg.ssh.allowedSignersFile=PATH verify-commit SHA
    git -c gpg.ssh.allowedSignersFile=PATH log -1 --format=%G?%n%GS%n%GK SHA

Both must agree: ``verify-commit`` exits 0 *and* ``%G?`` is ``G`` (a good,
valid signature). ``verify-commit`` alone is not enough: for GPG it also
exits 0 on ``U`` (good signature from a key the keyring does not trust).

The allowed-signers file comes from the reconciler's local settings, never
from the config repo: whoever can push to the repo must not be able to
widen the set of people who may sign (Flux's lesson, DESIGN.md). GPG
signatures are checked against the daemon user's keyring (``GNUPGHOME``).
Only the commit being applied (the branch tip) is checked; the ledger
branch is the reconciler's own and is never verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SettingsError
from reconciler.gitutil import run_git

#: What ``%G?`` letters mean (git-log(1) "PRETTY FORMATS").
_MEANING = {
    "G": "good signature",
    "B": "bad signature",
    "U": "good signature from a signer that is not trusted",
    "X": "good signature that has expired",
    "Y": "good signature made by an expired key",
    "R": "good signature made by a revoked key",
    "E": "signature cannot be checked (missing key or tool)",
    "N": "no signature",
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one commit."""

    commit: str
    trusted: bool
    reason: str  # one line, for logs and the ledger
    signer: str = ""  # principal or key owner, when git names one
    key: str = ""  # key fingerprint, when git names one
    detail: str = ""  # git's own words (verify-commit's stderr)


def check_allowed_signers(path: str) -> Path | None:
    """The allowed-signers file as a path, or None when the setting is empty.

    Raises :class:`SettingsError` when it is set but cannot be read: a daemon
    told to check signatures must not start with a policy it cannot apply.
    """
    if not path:
        return None
    file = Path(path)
    try:
        file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SettingsError(
            f"allowed_signers {path}: no such file; require_signed_commits needs it "
            "(ssh-keygen ALLOWED SIGNERS format: who may sign config commits)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"allowed_signers {path}: cannot read it: {why}") from exc
    return file.resolve()


def verify_commit(repo: Path, commit: str, *, allowed_signers: Path | None) -> Verdict:
    """Check ``commit`` in ``repo``; never raises for an untrusted commit (that is a verdict)."""
    config: list[str] = []
    if allowed_signers is not None:
        config = ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers}"]
    verify = run_git(repo, (*config, "verify-commit", commit), timeout=60.0)
    shown = run_git(
        repo, (*config, "log", "-1", "--format=%G?%n%GS%n%GK", commit, "--"), timeout=60.0
    )
    lines = [*shown.text.splitlines(), "", "", ""][:3] if shown.returncode == 0 else ["E", "", ""]
    letter, signer, key = (line.strip() for line in lines)
    detail = " ".join(line.strip() for line in verify.stderr.splitlines() if line.strip())
    trusted = verify.returncode == 0 and letter == "G"
    if trusted:
        who = signer or key or "an allowed signer"
        reason = f"signed by {who}"
    else:
        meaning = _MEANING.get(letter, f"signature state {letter!r}")
        if letter == "G":  # git printed G but verify-commit failed: trust neither
            meaning = "signature could not be verified"
        reason = f"commit {commit[:12]} is not trusted: {meaning}"
        if letter == "U" and allowed_signers is not None:
            reason += f" (its key is not in {allowed_signers})"
    return Verdict(
        commit=commit, trusted=trusted, reason=reason, signer=signer, key=key, detail=detail
    )
