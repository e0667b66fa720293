"""The daemon's own clone of the config repo, kept under the work directory.

A bare clone with ``origin`` pointing at the configured repo (a local path or
a URL). The daemon fetches only the tracked branch, into
``refs/remotes/origin/<branch>``: nothing it fetches can overwrite the ledger
branch it writes locally (``refs/heads/<status branch>``, which the ledger
itself pushes to and fetches from ``origin``), and the two never fight over a
ref lock.

Why not ``git clone --mirror``: a mirror's fetch refspec ``+refs/*:refs/*``
would clobber unpushed ledger commits, and ``remote.origin.mirror`` makes
every push a mirror push, which git refuses together with the explicit
refspec the ledger pushes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from reconciler.errors import RepoError
from reconciler.gitutil import common_git_dir, git, run_git

#: How long one fetch may take before the daemon gives up on this round.
FETCH_TIMEOUT = 300.0

_SCP_LIKE = re.compile(r"^[^/:]+@?[^/:]*:(?!//)")


@dataclass(frozen=True)
class Origin:
    """The configured repo: what the user wrote, and its git dir when it is on this machine."""

    spec: str
    local: Path | None  # the repository's directory (as given, resolved) when local
    git_dir: Path | None  # its common git dir when local

    @property
    def is_local(self) -> bool:
        return self.local is not None


def resolve_origin(spec: str) -> Origin:
    """Classify ``spec``: a local path (``/srv/c.git``, ``file:///srv/c.git``) or a URL."""
    if not spec:
        raise RepoError("no config repo set (settings 'repo' or --repo)")
    path: Path | None = None
    if spec.startswith("file://"):
        path = Path(unquote(urlparse(spec).path))
    elif "://" not in spec and not (_SCP_LIKE.match(spec) and not Path(spec).exists()):
        path = Path(spec)
    if path is None:
        return Origin(spec=spec, local=None, git_dir=None)
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise RepoError(f"config repo {spec}: no such directory")
    git_dir = common_git_dir(path)
    if git_dir is None:
        raise RepoError(f"config repo {spec} is not a git repository")
    return Origin(spec=spec, local=path, git_dir=git_dir)


def clone_dir(work_dir: Path, origin: Origin) -> Path:
    """Where the clone of ``origin`` lives: one per configured repo, named so a human can tell."""
    key = str(origin.local) if origin.local else origin.spec
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", key.rstrip("/").rsplit("/", 1)[-1]).strip("-.")
    stem = stem.removesuffix(".git") or "config"
    return work_dir / "repos" / f"{stem}-{digest}.git"


class Mirror:
    """A bare clone of the config repo that the daemon fetches into and the ledger writes to."""

    def __init__(self, work_dir: Path, origin: Origin, branch: str = "main") -> None:
        self.origin = origin
        self.branch = branch
        self.path = clone_dir(work_dir, origin)

    @property
    def url(self) -> str:
        return str(self.origin.local) if self.origin.local else self.origin.spec

    def ensure(self) -> None:
        """Clone when there is no clone yet; make sure an existing one points at the origin.

        The clone is made in a temporary directory and renamed into place, so
        a daemon killed mid-clone leaves no half clone behind, and two daemons
        starting at once end with one clone (the second rename fails; it uses
        the first one's).
        """
        if (self.path / "HEAD").exists():
            self._configure()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".clone-", dir=self.path.parent))
        try:
            result = run_git(
                self.path.parent,
                ("clone", "--bare", "--quiet", self.url, str(staging / "repo.git")),
                timeout=FETCH_TIMEOUT,
            )
            if result.returncode != 0:
                raise RepoError(f"cannot clone config repo {self.origin.spec}: {result.message()}")
            try:
                os.rename(staging / "repo.git", self.path)
            except OSError:
                if not (self.path / "HEAD").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._configure()
        self.fetch()  # a bare clone has no refs/remotes/origin/* until the first fetch

    def _configure(self) -> None:
        git(self.path, "config", "remote.origin.url", self.url)
        git(self.path, "config", "--replace-all", "remote.origin.fetch", self._refspec)
        # gc would pack refs while the ledger updates one; the daemon runs gc itself when idle.
        git(self.path, "config", "gc.auto", "0")

    @property
    def _refspec(self) -> str:
        return f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}"

    def fetch(self) -> None:
        """Fetch the tracked branch; raise :class:`RepoError` when it cannot be fetched."""
        result = run_git(
            self.path,
            ("fetch", "--quiet", "--no-tags", "origin", self._refspec),
            timeout=FETCH_TIMEOUT,
        )
        if result.returncode != 0:
            if "couldn't find remote ref" in result.stderr:
                # No such branch (yet): forget what we had, the loop waits for it.
                run_git(self.path, ("update-ref", "-d", f"refs/remotes/origin/{self.branch}"))
                return
            raise RepoError(f"cannot fetch config repo {self.origin.spec}: {result.message()}")

    def tip(self, branch: str) -> str | None:
        """The commit the origin's ``branch`` was at when last fetched (None: no such branch)."""
        result = run_git(
            self.path,
            ("rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}^{{commit}}"),
        )
        return result.text.strip() if result.returncode == 0 else None

    def housekeeping(self) -> None:
        """``git gc --auto`` while no rollout writes to the clone."""
        run_git(self.path, ("-c", "gc.auto=6700", "gc", "--auto", "--quiet"), timeout=FETCH_TIMEOUT)
