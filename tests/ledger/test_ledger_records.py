"""Ledger records and reads against real repositories, bare and non-bare."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import LedgerError, RepoError
from reconciler.gitutil import BlobRef, git, identity_env, new_commit, scrubbed_env
from reconciler.ledger import Ledger, Record

from .conftest import sh_git

GEN = "5a3e9b1c2d4f" + "0" * 28
BUILD = "3f2a9c1e0b7d" + "1" * 52


def web1(outcome: str = "success", **kw: object) -> Record:
    facts = {"host": "web1", "buildset": "lab", "outcome": outcome, "facts": {"uname": "x"}}
    fields: dict[str, object] = {
        "subject": f"web1: installed build {BUILD[:12]} and healthy",
        "generation": GEN,
        "buildset": "lab",
        "host": "web1",
        "stage": "production",
        "outcome": outcome,
        "build": BUILD,
        "files": {"status/lab/web1.json": json.dumps(facts)},
    }
    fields.update(kw)
    return Record(**fields)  # type: ignore[arg-type]


def test_no_ledger_yet_reads_empty(bare: Path) -> None:
    ledger = Ledger(bare)
    assert ledger.head() is None
    assert ledger.read("status/lab/web1.json") is None
    assert ledger.read_json("status/lab/rollout.json") is None
    assert ledger.entries() == []


def test_round_trip_message_trailers_and_files(bare: Path) -> None:
    ledger = Ledger(bare, now=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    sha = ledger.record(web1(body="etcupdate conflicts:\n  /etc/rc.conf"))
    assert ledger.head() == sha
    assert len(sha) == 40
    message = sh_git(bare, "log", "-1", "--format=%B", sha)
    assert message == (
        f"web1: installed build {BUILD[:12]} and healthy\n\n"
        "etcupdate conflicts:\n  /etc/rc.conf\n\n"
        f"Reconciler-Generation: {GEN}\n"
        "Reconciler-Buildset: lab\n"
        "Reconciler-Host: web1\n"
        "Reconciler-Stage: production\n"
        "Reconciler-Outcome: success\n"
        f"Reconciler-Build: {BUILD}\n\n"
    )
    who = sh_git(bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%aI", sha).strip()
    assert who == "reconciler <reconciler@localhost>|reconciler <reconciler@localhost>|" + (
        "2026-01-02T03:04:05+00:00"
    )
    (entry,) = ledger.entries()
    assert entry.commit == sha
    assert entry.time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert entry.subject == f"web1: installed build {BUILD[:12]} and healthy"
    assert entry.body == "etcupdate conflicts:\n  /etc/rc.conf"
    assert dict(entry.trailers) == {
        "generation": GEN,
        "buildset": "lab",
        "host": "web1",
        "stage": "production",
        "outcome": "success",
        "build": BUILD,
    }
    assert ledger.read_json("status/lab/web1.json")["outcome"] == "success"
    assert sh_git(bare, "ls-tree", "-r", "--name-only", sha).split() == ["status/lab/web1.json"]


def test_none_trailers_are_omitted_and_body_optional(bare: Path) -> None:
    ledger = Ledger(bare)
    sha = ledger.record(
        Record(
            subject="config validated",
            generation="worktree",
            buildset=None,
            host=None,
            stage="config",
            outcome="validated",
        )
    )
    message = sh_git(bare, "log", "-1", "--format=%B", sha)
    assert message == (
        "config validated\n\nReconciler-Generation: worktree\nReconciler-Stage: config\n"
        "Reconciler-Outcome: validated\n\n"
    )
    (entry,) = ledger.entries()
    assert entry.body == ""
    assert dict(entry.trailers) == {
        "generation": "worktree",
        "stage": "config",
        "outcome": "validated",
    }
    assert entry.host is None and entry.outcome == "validated"


def test_body_looking_like_trailers_or_patch_is_kept(bare: Path) -> None:
    body = "make failed:\n--- a/x\n+++ b/x\n\nReconciler-Host: not-a-trailer here"
    ledger = Ledger(bare)
    ledger.record(web1("failure", body=body + "\n\nmore text"))
    (entry,) = ledger.entries()
    assert entry.body == body + "\n\nmore text"
    assert entry.host == "web1"


def test_new_tree_keeps_other_files_and_replaces_named_ones(bare: Path) -> None:
    ledger = Ledger(bare)
    ledger.record(
        web1(
            files={
                "status/lab/web1.json": "{}",
                "status/lab/rollout.json": '{"a": 1}',
                "README": "ledger\n",
            }
        )
    )
    ledger.record(web1(files={"status/lab/web2.json": "[2]", "status/other/db1.json": "3"}))
    third = ledger.record(web1(files={"status/lab/rollout.json": '{"a": 2}'}))
    listing = sh_git(bare, "ls-tree", "-r", third)
    assert [line.split("\t")[1] for line in listing.splitlines()] == [
        "README",
        "status/lab/rollout.json",
        "status/lab/web1.json",
        "status/lab/web2.json",
        "status/other/db1.json",
    ]
    assert ledger.read_json("status/lab/rollout.json") == {"a": 2}
    assert ledger.read("status/lab/web1.json") == "{}"
    assert ledger.read("README") == "ledger\n"
    assert ledger.read("status/lab/missing.json") is None
    # each record is one commit, linear, newest first
    assert [e.commit for e in ledger.entries()] == sh_git(bare, "rev-list", third).split()
    assert sh_git(bare, "rev-list", "--min-parents=2", third) == ""


def test_record_without_files_is_still_a_commit(bare: Path) -> None:
    ledger = Ledger(bare)
    first = ledger.record(web1())
    second = ledger.record(web1("skipped", files={}))
    assert second != first
    assert sh_git(bare, "rev-parse", f"{second}^").strip() == first
    assert sh_git(bare, "rev-parse", f"{second}^{{tree}}") == sh_git(
        bare, "rev-parse", f"{first}^{{tree}}"
    )


def test_worktree_and_index_untouched(checkout: Path) -> None:
    before = sh_git(checkout, "status", "--porcelain=v1", "--untracked-files=all")
    index_before = (checkout / ".git" / "index").read_bytes()
    head_before = sh_git(checkout, "rev-parse", "HEAD", "main")
    ledger = Ledger(checkout)
    ledger.record(web1(files={"status/lab/web1.json": "{}", "fleet.yaml": "ledger copy\n"}))
    ledger.record(web1())
    assert sh_git(checkout, "status", "--porcelain=v1", "--untracked-files=all") == before
    assert (checkout / ".git" / "index").read_bytes() == index_before
    assert sh_git(checkout, "rev-parse", "HEAD", "main") == head_before
    assert (checkout / "fleet.yaml").read_text() == "src_host: builder2\n"
    assert not (checkout / "status").exists()
    assert sh_git(checkout, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    # the status branch does not share history with the config branch
    assert sh_git(checkout, "rev-list", "--count", "reconciler/status").strip() == "2"


def test_identity_is_fixed_whatever_git_config_says(checkout: Path) -> None:
    sh_git(checkout, "config", "user.name", "Some User")
    sh_git(checkout, "config", "user.email", "user@example.org")
    sha = Ledger(checkout).record(web1())
    assert sh_git(checkout, "log", "-1", "--format=%an %ae %cn %ce", sha).split() == [
        "reconciler",
        "reconciler@localhost",
        "reconciler",
        "reconciler@localhost",
    ]


def test_inherited_git_variables_are_scrubbed(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy.git"
    subprocess.run(["git", "init", "-q", "--bare", str(decoy)], check=True, env=scrubbed_env())
    index_before = (checkout / ".git" / "index").read_bytes()
    monkeypatch.setenv("GIT_DIR", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "other-index"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Intruder")
    sha = Ledger(checkout).record(web1())
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert sh_git(checkout, "log", "-1", "--format=%an", sha).strip() == "reconciler"
    assert (
        subprocess.run(
            ["git", "-C", str(decoy), "rev-parse", "--verify", "-q", "reconciler/status"],
            capture_output=True,
            env=scrubbed_env(),
        ).returncode
        == 1
    )
    assert (checkout / ".git" / "index").read_bytes() == index_before
    assert not (tmp_path / "other-index").exists()


def test_entries_filter_by_host_and_buildset_and_limit(bare: Path) -> None:
    ledger = Ledger(bare)
    for host in ("web1", "web10", "web1", "db1"):
        ledger.record(web1(subject=f"{host}: done", host=host, files={}))
    ledger.record(web1(subject="other set", buildset="lab2", files={}))
    assert [e.subject for e in ledger.entries(host="web1")] == [
        "other set",
        "web1: done",
        "web1: done",
    ]
    assert [e.subject for e in ledger.entries(host="web1", buildset="lab")] == ["web1: done"] * 2
    assert [e.subject for e in ledger.entries(host="web1", limit=1)] == ["other set"]
    assert [e.subject for e in ledger.entries(limit=2)] == ["other set", "db1: done"]
    assert ledger.entries(host="nohost") == []
    assert len(ledger.entries(buildset="lab")) == 4
    assert ledger.entries(limit=0) == []


def test_bad_input_is_a_ledger_error(bare: Path, tmp_path: Path) -> None:
    ledger = Ledger(bare)
    for path in ("/abs", "a/../b", "a//b", ".git/config", ""):
        with pytest.raises(LedgerError, match="invalid path"):
            ledger.record(web1(files={path: "x"}))
    with pytest.raises(LedgerError, match="one non-empty line"):
        ledger.record(web1(host="web1\nReconciler-Outcome: success"))
    with pytest.raises(LedgerError, match="subject"):
        ledger.record(web1(subject="  "))
    for branch in ("a..b", "-x", "has space", "x.lock", "a/", "@{u}"):
        with pytest.raises(LedgerError, match="invalid ledger branch"):
            Ledger(bare, branch=branch)
    assert ledger.head() is None  # nothing half-written
    with pytest.raises(LedgerError, match="not a git repository"):
        Ledger(tmp_path).head()
    with pytest.raises(LedgerError, match="no such directory"):
        Ledger(tmp_path / "missing").entries()


def test_reading_a_directory_or_bad_json_is_an_error(bare: Path) -> None:
    ledger = Ledger(bare)
    ledger.record(web1(files={"status/lab/web1.json": "{not json"}))
    with pytest.raises(LedgerError, match="not a file"):
        ledger.read("status/lab")
    with pytest.raises(LedgerError, match="not valid JSON"):
        ledger.read_json("status/lab/web1.json")


def test_subject_is_one_line_and_unicode_survives(bare: Path) -> None:
    ledger = Ledger(bare)
    ledger.record(web1(subject="web1: failed\nhealth check «sshd»", files={"status/ü.json": "é"}))
    (entry,) = ledger.entries()
    assert entry.subject == "web1: failed health check «sshd»"
    assert ledger.read("status/ü.json") == "é"


def test_custom_branch_and_existing_branch_name_is_respected(checkout: Path) -> None:
    ledger = Ledger(checkout, branch="ops/ledger")
    sha = ledger.record(web1())
    assert sh_git(checkout, "rev-parse", "refs/heads/ops/ledger").strip() == sha
    assert Ledger(checkout).head() is None


def test_new_commit_deletes_prunes_and_moves_no_ref(bare: Path) -> None:
    env = identity_env()
    first = new_commit(bare, None, {"a/b/c.json": b"1", "a/d.json": b"2", "top": b"3"}, "m1\n", env)
    blob = git(bare, "rev-parse", f"{first}:top")
    odd = 'we"ird\\name \tx'
    second = new_commit(
        bare, first, {"a/b/c.json": None, "x/y": BlobRef(blob), odd: b"q"}, "two\nlines", env
    )
    names = git(bare, "ls-tree", "-r", "-t", "--name-only", "-z", second).split("\0")[:-1]
    assert names == ["a", "a/d.json", "top", odd, "x", "x/y"]
    assert git(bare, "cat-file", "blob", f"{second}:x/y") == "3"
    assert git(bare, "rev-parse", f"{second}^") == first
    # The message is stored as given; author and committer are the reconciler's.
    body = git(bare, "cat-file", "commit", second)
    assert body.endswith("\n\ntwo\nlines")
    assert "author reconciler <reconciler@localhost> " in body
    assert git(bare, "for-each-ref") == ""  # fast-import's scratch ref never lands
    assert git(bare, "fsck", "--strict", "--no-dangling") == ""
    with pytest.raises(RepoError, match="invalid path"):
        new_commit(bare, second, {"../escape": b""}, "x", env)
    with pytest.raises(RepoError, match="fast-import failed"):
        new_commit(bare, "1" * 40, {"f": b""}, "x", env)  # no such parent
    assert not list(bare.glob("fast_import_crash_*"))


def test_sha256_repository(tmp_path: Path) -> None:
    repo = tmp_path / "sha256.git"
    subprocess.run(
        ["git", "init", "-q", "--bare", "--object-format=sha256", str(repo)],
        check=True,
        env=scrubbed_env(),
    )
    ledger = Ledger(repo)
    sha = ledger.record(web1())
    ledger.record(web1(files={"status/lab/web1.json": "{}"}))
    assert len(sha) == 64
    assert ledger.read("status/lab/web1.json") == "{}"
    assert len(ledger.entries()) == 2
