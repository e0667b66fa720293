"""This checkout's files as a release sees them, and the PEP 517 build of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_tree(dest: Path) -> Path:
    """Copy the files git would commit from this tree (tracked and new; links kept as links).

    Building from a copy keeps setuptools' build/ and egg-info out of the checkout
    (a stale build/lib would otherwise slip removed modules into the wheel).
    """
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if not source.is_symlink() and not source.is_file():
            continue  # deleted in the work tree, or reached through a linked directory
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


def build(tree: Path, outdir: Path, *what: str) -> None:
    """``python -m build`` (``--sdist``, ``--wheel`` or both: the wheel from the sdist)."""
    done = subprocess.run(
        [sys.executable, "-m", "build", *what, "--outdir", str(outdir), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"build failed:\n{done.stdout}\n{done.stderr}"
