"""Writing the adopted config repo: all of it or nothing.

The files go to a scratch directory beside the target, are loaded exactly as
``reconciler validate`` loads a repo, committed (``git init``, one commit in
the reconciler's identity, through :mod:`reconciler.gitutil`), and only then
renamed to the target: rename(2) replaces an empty directory and refuses a
full one, so a directory that filled up meanwhile is not overwritten, and a
failure at any step leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from reconciler.config.load import load_config
from reconciler.errors import UserError
from reconciler.gitutil import git, identity_env


def check_target(directory: Path) -> None:
    """Raise unless ``directory`` is absent or an empty directory."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise UserError(f"{directory}: exists and is not a directory; name a new one")
    if directory.is_dir() and any(directory.iterdir()):
        raise UserError(f"{directory}: not empty; reconciler init writes a new repo only")


def write_repo(directory: Path, files: Mapping[str, str], message: str, branch: str) -> str:
    """Write, validate (ConfigInvalid), commit; rename to ``directory``; the commit id."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}.init-", dir=directory.parent))
    try:
        for path, text in files.items():
            target = scratch / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        load_config(scratch)
        git(scratch, "init", "-q", "-b", branch)
        git(scratch, "add", "-A")
        git(scratch, "commit", "-q", "-m", message, env=identity_env())
        commit = git(scratch, "rev-parse", "HEAD")
        check_target(directory)
        try:
            scratch.rename(directory)
        except OSError as exc:
            raise UserError(f"{directory}: cannot put the repo there: {exc.strerror}") from exc
        return commit
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
