"""Running local ``git`` for the reconciler: argument lists, a scrubbed environment.

Every git subprocess the project starts goes through :func:`run_git`:

- never a shell; arguments are a list;
- inherited ``GIT_*`` variables are dropped (a hook or a wrapper that exported
  ``GIT_DIR`` or ``GIT_INDEX_FILE`` would otherwise redirect our plumbing to
  another repository or index); only the transport ones that a daemon's
  SSH setup may rely on are kept (``GIT_SSH``, ``GIT_SSH_COMMAND``, ``GIT_SSL_*``);
- ``LC_ALL=C`` so the few messages we classify are in English, and
  ``GIT_TERMINAL_PROMPT=0`` so a push never waits for a password;
- failures become :class:`~reconciler.errors.RepoError` (or the error class the
  caller names, e.g. ``LedgerError``), chained with ``from exc`` where an OS
  exception caused them.

The reconciler's own commits use one fixed identity, :data:`IDENTITY`
(``reconciler <reconciler@localhost>``), whatever the repository's or the
user's ``user.name``/``user.email`` say: the ledger is the reconciler's audit
trail, and ``git log --author=reconciler`` must find all of it and nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import RepoError, UserError

#: Name and e-mail on every commit the reconciler writes.
IDENTITY = ("reconciler", "reconciler@localhost")

#: Inherited GIT_* variables kept: they only choose how to reach a remote.
_KEEP = ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_SSL_CAINFO", "GIT_SSL_NO_VERIFY")

DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class GitResult:
    """One finished git command."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (replacing what is not)."""
        return self.stdout.decode("utf-8", errors="replace")

    def message(self) -> str:
        """The most telling line of stderr, for an error message."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        return (fatal or lines or [f"exit status {self.returncode}"])[-1]


#: For repositories whose hashes must be the same on every machine (the simulated
#: upstreams): no system or user git configuration may change what is committed.
HERMETIC = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without GIT_* (but transport ones), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP}
    env["LC_ALL"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def identity_env(when: datetime | None = None) -> dict[str, str]:
    """Author and committer variables for a reconciler commit made at ``when`` (default now)."""
    moment = when or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "-" if minutes < 0 else "+"
    # git's internal date format: "<unix seconds> <+hhmm>", unambiguous in every locale.
    stamp = f"{int(moment.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    name, email = IDENTITY
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": stamp,
    }


def run_git(
    repo: Path,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    error: type[UserError] = RepoError,
) -> GitResult:
    """Run ``git -C repo ARGS``; a non-zero exit is returned, not raised.

    Raises ``error`` only when git cannot be run at all or exceeds ``timeout``.
    """
    argv = ("git", "-C", str(repo), *args)
    try:
        done = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            env=scrubbed_env(env),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise error(f"git {args[0]} in {repo} did not finish within {timeout:g}s") from exc
    except OSError as exc:
        raise error(f"cannot run git: {exc}") from exc
    return GitResult(
        args=tuple(args),
        returncode=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr.decode("utf-8", errors="replace"),
    )


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    error: type[UserError] = RepoError,
) -> str:
    """Run git and return its stdout without the trailing newline; raise ``error`` on failure."""
    result = run_git(repo, args, input=input, env=env, timeout=timeout, error=error)
    if result.returncode != 0:
        raise error(f"git {args[0]} failed in {repo}: {result.message()}")
    return result.text.rstrip("\n")


def common_git_dir(path: Path) -> Path | None:
    """The git directory shared by every work tree of the repository at ``path``.

    None when ``path`` is a plain directory (not inside a git repository).
    """
    if not path.is_dir():
        raise RepoError(f"{path}: no such directory")
    result = run_git(path, ("rev-parse", "--path-format=absolute", "--git-common-dir"))
    if result.returncode != 0:
        if "not a git repository" in result.stderr:
            return None
        raise RepoError(f"{path}: {result.message()}")
    return Path(result.text.strip())


def require_repo(path: Path, error: type[UserError] = RepoError) -> None:
    """Raise ``error`` unless ``path`` is a git repository (bare or not)."""
    if not path.is_dir():
        raise error(f"{path}: no such directory")
    result = run_git(path, ("rev-parse", "--git-dir"), error=error)
    if result.returncode != 0:
        raise error(f"{path} is not a git repository ({result.message()})")


# --- index-free commits --------------------------------------------------------------


@dataclass(frozen=True)
class BlobRef:
    """An existing blob, by id and mode (used when replaying a commit's changes)."""

    oid: str
    mode: str = "100644"


def check_tree_path(path: str, error: type[UserError] = RepoError) -> list[str]:
    """Split a repository-relative path, refusing what would escape or confuse a tree."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
        raise error(f"invalid path in tree: {path!r}")
    if any("\0" in p or "\n" in p for p in parts):
        raise error(f"invalid path in tree: {path!r}")
    return parts


def new_commit(
    repo: Path,
    parent: str | None,
    changes: Mapping[str, bytes | BlobRef | None],
    message: str,
    env: Mapping[str, str],
    *,
    error: type[UserError] = RepoError,
) -> str:
    """A new commit object: ``parent``'s tree with ``changes`` applied; no ref moves.

    A change is content to store (bytes), an existing blob to reuse
    (:class:`BlobRef`) or None to delete; entries not named are kept, and a
    directory left empty disappears. Author and committer come from the
    ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` entries of ``env`` (dates in git's raw
    format), the message is stored as given.

    One ``git fast-import`` does it all, where a tree walk with hash-object,
    ls-tree and mktree took a process per file and per directory level (the
    ledger commits several times per host and step). No index or work tree is
    touched. fast-import must name a branch; it gets a unique scratch ref that
    is reset to the null id before the end, so no ref is ever written, and
    ``feature done`` makes a cut-short stream fail instead of committing half.
    """
    for path in changes:
        check_tree_path(path, error)
    name, email = IDENTITY
    scratch = f"refs/reconciler-scratch/{uuid.uuid4().hex}"
    stream = bytearray()

    def line(text: str) -> None:
        stream.extend(text.encode("utf-8", errors="surrogateescape") + b"\n")

    def data(payload: bytes) -> None:
        line(f"data {len(payload)}")
        stream.extend(payload + b"\n")

    line("feature done")
    line(f"commit {scratch}")
    line("mark :1")
    for role in ("AUTHOR", "COMMITTER"):
        who = env.get(f"GIT_{role}_NAME", name)
        mail = env.get(f"GIT_{role}_EMAIL", email)
        when = env.get(f"GIT_{role}_DATE") or identity_env()[f"GIT_{role}_DATE"]
        line(f"{role.lower()} {who} <{mail}> {when}")
    data(message.encode("utf-8"))
    if parent:
        line(f"from {parent}")
    for path, change in changes.items():
        quoted = _quote_path(path)
        if change is None:
            line(f"D {quoted}")
        elif isinstance(change, BlobRef):
            line(f"M {change.mode} {change.oid} {quoted}")
        else:
            line(f"M 100644 inline {quoted}")
            data(change)
    line("")
    line("get-mark :1")
    line(f"reset {scratch}")
    line(f"from {_null_oid(repo, parent, error)}")
    line("")
    line("done")
    result = run_git(repo, ("fast-import", "--quiet", "--done"), input=bytes(stream), error=error)
    oid = result.text.strip()
    if result.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", oid):
        # fast-import leaves a crash report in the git directory; the error says it all.
        report = re.search(r"dumping crash report to (\S+)", result.stderr)
        if report:
            (repo / report.group(1)).unlink(missing_ok=True)
        raise error(f"git fast-import failed in {repo}: {result.message()}")
    return oid


def _quote_path(path: str) -> str:
    # fast-import's C-style quoting; check_tree_path has refused NUL and LF.
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NULL_OIDS: dict[Path, str] = {}


def _null_oid(repo: Path, known: str | None, error: type[UserError]) -> str:
    # The null id is as long as the repository's hash (sha1 or sha256).
    if known and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", known):
        return "0" * len(known)
    if repo not in _NULL_OIDS:
        form = git(repo, "rev-parse", "--show-object-format", error=error)
        _NULL_OIDS[repo] = "0" * (64 if form == "sha256" else 40)
    return _NULL_OIDS[repo]


def commit_changes(
    repo: Path, commit: str, *, error: type[UserError] = RepoError
) -> dict[str, BlobRef | None]:
    """What ``commit`` changed against its first parent (everything, for a root commit).

    Path -> the new blob, or None for a deletion; in the form :func:`new_commit` takes.
    """
    raw = run_git(
        repo, ("diff-tree", "-r", "-z", "--no-renames", "--root", "--no-commit-id", commit),
        error=error,
    )  # fmt: skip
    if raw.returncode != 0:
        raise error(f"cannot read commit {commit} in {repo}: {raw.message()}")
    changes: dict[str, BlobRef | None] = {}
    items = raw.stdout.split(b"\0")
    # -z raw format: ":<old mode> <new mode> <old oid> <new oid> <status>" NUL <path> NUL
    for header, path in zip(items[0::2], items[1::2], strict=False):
        if not header.startswith(b":"):
            continue
        _, new_mode, _, new_oid, status = header[1:].decode().split(" ")
        name = path.decode("utf-8", errors="surrogateescape")
        changes[name] = None if status == "D" else BlobRef(new_oid, new_mode)
    return changes


def is_ancestor(repo: Path, older: str, newer: str, *, error: type[UserError] = RepoError) -> bool:
    """Whether ``older`` is ``newer`` or one of its ancestors."""
    out = run_git(repo, ("merge-base", "--is-ancestor", older, newer), error=error)
    if out.returncode in (0, 1):
        return out.returncode == 0
    raise error(f"cannot compare commits {older} and {newer} in {repo}: {out.message()}")
