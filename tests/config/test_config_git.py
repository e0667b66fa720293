"""Loading from real git repositories: a commit from the object store versus the work tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config import render
from reconciler.config.buildid import build_id
from reconciler.config.load import load_config, resolve_commit
from reconciler.errors import ConfigInvalid, RepoError
from tests.config.conftest import EXAMPLE, Result, edit

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def gitrepo(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE, target)
    git(target, "init", "-q", "-b", "main")
    commit_all(target, "fleet")
    return target


def test_load_at_commit_reads_the_object_store_not_the_work_tree(gitrepo: Path) -> None:
    first = git(gitrepo, "rev-parse", "HEAD")
    edit(gitrepo / "buildsets/lab/make.conf", "x86-64-v2", "x86-64-v3")
    second = commit_all(gitrepo, "newer cpu")
    edit(gitrepo / "buildsets/lab/make.conf", "x86-64-v3", "native")  # uncommitted

    old = load_config(gitrepo, first)
    new = load_config(gitrepo, "main")
    disk = load_config(gitrepo)
    assert (old.commit, new.commit, disk.commit) == (first, second, None)
    assert "x86-64-v2" in old.buildset("lab").make_conf
    assert "x86-64-v3" in new.buildset("lab").make_conf
    assert "CPUTYPE?=native" in disk.buildset("lab").make_conf
    assert len({build_id(c, "lab") for c in (old, new, disk)}) == 3
    assert build_id(old, "db") == build_id(new, "db") == build_id(disk, "db")
    assert old.origin == str(gitrepo)
    header = render.src_conf(new, "lab").splitlines()[0]
    # The header names the repo, never the commit: a commit that changes no
    # rendered byte must change no file on a host.
    assert header == f"# Managed by reconciler: {gitrepo}; edits are overwritten"
    assert render.src_conf(old, "lab") == render.src_conf(new, "lab")


def test_invalid_commit_is_reported_even_when_the_work_tree_is_fine(gitrepo: Path) -> None:
    edit(gitrepo / "buildsets/db/buildset.yaml", "jobs: 2", "jobs: 0")
    bad = commit_all(gitrepo, "oops")
    edit(gitrepo / "buildsets/db/buildset.yaml", "jobs: 0", "jobs: 2")
    load_config(gitrepo)  # the fixed work tree is valid
    with pytest.raises(ConfigInvalid) as caught:
        load_config(gitrepo, bad)
    assert [str(p) for p in caught.value.problems] == [
        "buildsets/db/buildset.yaml:4:7: jobs: must be at least 1"
        " (hint: Parallel make jobs on the build host (make -j), 1 to 1024.)"
    ]


def test_committed_symlink_and_big_blob_are_refused(gitrepo: Path) -> None:
    (gitrepo / "kernels/WEB").unlink()
    (gitrepo / "kernels/WEB").symlink_to("/etc/passwd")
    (gitrepo / "buildsets/db/src.conf").write_text("#" * (1 << 20) + "\n")
    rev = commit_all(gitrepo, "bad files")
    with pytest.raises(ConfigInvalid) as caught:
        load_config(gitrepo, rev)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("buildsets/db/src.conf", "file is 1.0 MiB; the limit is 1 MiB"),
        ("kernels/WEB", "is a symbolic link, not a regular file"),
    ]


def test_resolve_commit(gitrepo: Path) -> None:
    head = git(gitrepo, "rev-parse", "HEAD")
    assert resolve_commit(gitrepo, "main") == head
    assert resolve_commit(gitrepo, head[:10]) == head
    assert resolve_commit(str(gitrepo), "HEAD") == head


@pytest.mark.parametrize("rev", ["nope", "0" * 40, "--output=/tmp/x", "HEAD~5", ""])
def test_unknown_revision_is_a_repo_error(gitrepo: Path, rev: str) -> None:
    with pytest.raises(RepoError):
        resolve_commit(gitrepo, rev)
    with pytest.raises(RepoError):
        load_config(gitrepo, rev)


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="not a git repository"):
        load_config(tmp_path, "HEAD")


def test_empty_git_repository(tmp_path: Path, validate: Callable[..., Result]) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(RepoError):
        load_config(tmp_path, "HEAD")
    result = validate(tmp_path)  # the work tree: nothing but .git
    assert result.code == 1
    assert result.out.startswith("fleet.yaml:0:0: the config repo is empty")


def test_bare_clone_reads_head(gitrepo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "config.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(gitrepo), str(bare)], env=ENV, check=True)
    config = load_config(bare)
    assert config.commit == git(gitrepo, "rev-parse", "HEAD")


def test_validate_rev_through_the_cli(gitrepo: Path, validate: Callable[..., Result]) -> None:
    head = git(gitrepo, "rev-parse", "HEAD")
    result = validate(gitrepo, "--rev", "main")
    assert result.code == 0
    assert result.out.startswith(f"ok at {head[:12]}: 2 build sets, 6 hosts;")
    result = validate(gitrepo, "--rev", "no-such-branch")
    assert result.code == 1
    assert result.err == f"reconciler: error: {gitrepo}: no commit 'no-such-branch'\n"
