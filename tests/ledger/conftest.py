"""Real git repositories in tmp dirs for the ledger tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.gitutil import scrubbed_env


def sh_git(repo: Path, *args: str, input: str | None = None) -> str:
    """git as a user would run it (with an identity), for preparing and inspecting repos."""
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Tester", "-c", "user.email=t@example.org", *args],
        input=input,
        capture_output=True,
        text=True,
        env=scrubbed_env(),
        check=True,
    )
    return done.stdout


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    repo = tmp_path / "config.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True, env=scrubbed_env())
    return repo


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A non-bare repo with a commit on main, then a modified and a staged file."""
    repo = tmp_path / "config"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=scrubbed_env())
    (repo / "fleet.yaml").write_text("src_host: builder\n")
    (repo / "notes.txt").write_text("one\n")
    sh_git(repo, "add", ".")
    sh_git(repo, "commit", "-q", "-m", "config")
    (repo / "fleet.yaml").write_text("src_host: builder2\n")  # unstaged change
    (repo / "new.txt").write_text("staged\n")
    sh_git(repo, "add", "new.txt")  # staged change
    (repo / "untracked.txt").write_text("x\n")
    return repo
