"""Compare-and-swap: concurrent writers, local and through a remote, all land once, linearly."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import reconciler.ledger as ledger_module
from reconciler.errors import LedgerConflict, LedgerError
from reconciler.gitutil import scrubbed_env
from reconciler.ledger import Entry, Ledger, Record

from .conftest import sh_git


def rec(name: str, path: str | None = None) -> Record:
    return Record(
        subject=name, generation="worktree", buildset="lab", host=name.split("-")[0],
        stage="production", outcome="success",
        files={path or f"status/lab/{name}.json": f'"{name}"'},
    )  # fmt: skip


def assert_linear_with(repo: Path, ref: str, subjects: list[str]) -> None:
    log = sh_git(repo, "log", "--format=%s", ref).split()
    assert sorted(log) == sorted(subjects)  # every record exactly once
    assert sh_git(repo, "rev-list", "--min-parents=2", ref) == ""  # no merges
    assert sh_git(repo, "rev-list", "--max-parents=0", ref).count("\n") == 1  # one root


def run_threads(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def wrap(job: Callable[[], None]) -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_lost_cas_is_retried_on_the_new_tip(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer moves the branch between our tree build and our update-ref."""
    other = Ledger(bare)
    other.record(rec("base"))
    real_new_commit = ledger_module.new_commit
    calls: list[str | None] = []

    def interleaved(repo: Path, base: str | None, *args: object, **kw: object) -> str:
        calls.append(base)
        if len(calls) == 1:
            monkeypatch.setattr(ledger_module, "new_commit", real_new_commit)
            other.record(rec("intruder"))  # moves the tip: our CAS must fail
            monkeypatch.setattr(ledger_module, "new_commit", interleaved)
        return real_new_commit(repo, base, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger_module, "new_commit", interleaved)
    ours = Ledger(bare, sleep=lambda s: None).record(rec("ours"))
    assert len(calls) == 2 and calls[0] != calls[1]  # rebuilt on the moved tip
    assert sh_git(bare, "log", "--format=%s", "reconciler/status").split() == [
        "ours",
        "intruder",
        "base",
    ]
    assert sh_git(bare, "rev-parse", "reconciler/status").strip() == ours
    # the retried commit still carries the intruder's file: nothing was lost
    assert Ledger(bare).read("status/lab/intruder.json") == '"intruder"'


def test_first_commit_race_creator_loses_then_retries(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_new_commit = ledger_module.new_commit
    state = {"armed": True}

    def interleaved(repo: Path, base: str | None, *args: object, **kw: object) -> str:
        if state.pop("armed", False):
            Ledger(bare).record(rec("creator"))
        return real_new_commit(repo, base, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger_module, "new_commit", interleaved)
    Ledger(bare, sleep=lambda s: None).record(rec("second"))
    assert sh_git(bare, "log", "--format=%s", "reconciler/status").split() == ["second", "creator"]


def test_bounded_retries_end_in_ledger_conflict(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_new_commit = ledger_module.new_commit
    intruder = Ledger(bare)
    count = {"n": 0}

    def always_moved(repo: Path, base: str | None, *args: object, **kw: object) -> str:
        count["n"] += 1
        monkeypatch.setattr(ledger_module, "new_commit", real_new_commit)
        intruder.record(rec(f"intruder-{count['n']}"))
        monkeypatch.setattr(ledger_module, "new_commit", always_moved)
        return real_new_commit(repo, base, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger_module, "new_commit", always_moved)
    sleeps: list[float] = []
    with pytest.raises(LedgerConflict, match="lost the race 3 times"):
        Ledger(bare, attempts=3, sleep=sleeps.append).record(rec("never"))
    assert count["n"] == 3 and len(sleeps) == 3
    assert "never" not in sh_git(bare, "log", "--format=%s", "reconciler/status")


def test_threads_on_one_repo_all_land(checkout: Path) -> None:
    names = [f"h{t}-{i}" for t in range(4) for i in range(6)]

    def writer(t: int) -> Callable[[], None]:
        def job() -> None:
            ledger = Ledger(checkout)
            for i in range(6):
                ledger.record(rec(f"h{t}-{i}"))

        return job

    run_threads([writer(t) for t in range(4)])
    assert_linear_with(checkout, "reconciler/status", names)
    tree = sh_git(checkout, "ls-tree", "-r", "--name-only", "reconciler/status").split()
    assert sorted(tree) == sorted(f"status/lab/{n}.json" for n in names)


def test_processes_on_one_repo_all_land(bare: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from reconciler.ledger import Ledger, Record\n"
        "l = Ledger(Path(sys.argv[1]))\n"
        "for i in range(8):\n"
        "    n = f'{sys.argv[2]}-{i}'\n"
        "    l.record(Record(subject=n, generation='worktree', buildset=None, host=None,\n"
        "             stage='daemon', outcome='started', files={f'status/{n}.json': n}))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(bare), f"p{k}"]) for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert_linear_with(bare, "reconciler/status", [f"p{k}-{i}" for k in range(3) for i in range(8)])


# --- through a remote ---------------------------------------------------------------


def clone(bare: Path, dest: Path) -> Path:
    subprocess.run(
        ["git", "clone", "-q", str(bare), str(dest)],
        check=True,
        env=scrubbed_env(),
        capture_output=True,
    )
    return dest


@pytest.fixture
def origin(bare: Path) -> Path:
    """The shared config repo, with a main branch to clone."""
    Ledger(bare, branch="main").record(rec("config"))
    return bare


def test_two_clones_racing_through_the_remote(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, tmp_path / "a")
    b = clone(origin, tmp_path / "b")

    def writer(repo: Path, who: str) -> Callable[[], None]:
        def job() -> None:
            ledger = Ledger(repo, remote="origin")
            for i in range(5):
                ledger.record(rec(f"{who}-{i}", path=f"status/lab/{who}.json"))

        return job

    run_threads([writer(a, "a"), writer(b, "b")])
    names = [f"{w}-{i}" for w in "ab" for i in range(5)]
    assert_linear_with(origin, "reconciler/status", names)
    for who in "ab":  # each writer's own order is kept
        mine = [
            s
            for s in sh_git(origin, "log", "--reverse", "--format=%s", "reconciler/status").split()
            if s.startswith(who)
        ]
        assert mine == [f"{who}-{i}" for i in range(5)]
    remote_ledger = Ledger(origin)
    assert remote_ledger.read("status/lab/a.json") == '"a-4"'
    assert remote_ledger.read("status/lab/b.json") == '"b-4"'
    # both clones' local branches are consistent with what they pushed
    for repo in (a, b):
        local = sh_git(repo, "rev-parse", "reconciler/status").strip()
        assert (
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(origin),
                    "merge-base",
                    "--is-ancestor",
                    local,
                    "reconciler/status",
                ],
                env=scrubbed_env(),
            ).returncode
            == 0
        )


def test_fresh_clone_reads_the_remote_ledger_and_continues_it(origin: Path, tmp_path: Path) -> None:
    Ledger(origin).record(rec("earlier", path="status/lab/rollout.json"))
    fresh = clone(origin, tmp_path / "fresh")
    sh_git(fresh, "branch", "-D", "reconciler/status") if "reconciler/status" in sh_git(
        fresh, "branch"
    ) else None
    ledger = Ledger(fresh, remote="origin")
    assert ledger.read("status/lab/rollout.json") == '"earlier"'  # synced on first read
    returned = ledger.record(rec("later"))
    assert sh_git(origin, "log", "--format=%s", "reconciler/status").split() == ["later", "earlier"]
    assert sh_git(origin, "rev-parse", "reconciler/status").strip() == returned


def test_unsynced_local_commits_are_replayed_on_the_remote_tip(
    origin: Path, tmp_path: Path
) -> None:
    a = clone(origin, tmp_path / "a")
    b = clone(origin, tmp_path / "b")
    Ledger(a, remote="origin").record(rec("a-1"))
    Ledger(b).record(rec("b-offline"))  # recorded locally only (e.g. remote was away)
    Ledger(a, remote="origin").record(rec("a-2", path="status/lab/a-1.json"))
    returned = Ledger(b, remote="origin").record(rec("b-1"))
    assert sh_git(origin, "log", "--format=%s", "reconciler/status").split() == [
        "b-1",
        "b-offline",
        "a-2",
        "a-1",
    ]
    assert sh_git(origin, "rev-parse", "reconciler/status").strip() == returned
    final = Ledger(origin)
    assert final.read("status/lab/a-1.json") == '"a-2"'  # a's later write kept
    assert final.read("status/lab/b-offline.json") == '"b-offline"'
    (offline,) = [e for e in final.entries() if e.subject == "b-offline"]
    assert offline.host == "b" and offline.outcome == "success"


def test_push_refused_by_the_remote_is_a_ledger_error(origin: Path, tmp_path: Path) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no ledger here' >&2\nexit 1\n")
    hook.chmod(0o755)
    a = clone(origin, tmp_path / "a")
    with pytest.raises(LedgerError, match="refused the ledger push"):
        Ledger(a, remote="origin", sleep=lambda s: None).record(rec("a-1"))
    # the record stays in the local clone, for the next push
    assert sh_git(a, "log", "--format=%s", "reconciler/status").split() == ["a-1"]


def test_unreachable_remote_is_a_ledger_error(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=scrubbed_env())
    sh_git(repo, "remote", "add", "origin", str(tmp_path / "gone.git"))
    ledger = Ledger(repo, remote="origin", sleep=lambda s: None)
    assert ledger.head() is None  # reads fall back to the local copy
    with pytest.raises(LedgerError, match="cannot push"):
        ledger.record(rec("x-1"))


def test_remote_given_as_a_url(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, tmp_path / "a")
    Ledger(origin).record(rec("earlier"))
    ledger = Ledger(a, remote=f"file://{origin}")
    returned = ledger.record(rec("a-1"))
    assert sh_git(origin, "log", "--format=%s", "reconciler/status").split() == ["a-1", "earlier"]
    assert sh_git(a, "rev-parse", "refs/reconciler/remote/reconciler/status").strip() in (
        returned,
        sh_git(origin, "rev-parse", "reconciler/status~1").strip(),
    )


def test_writer_whose_last_tip_went_stale_builds_on_the_new_one(bare: Path) -> None:
    """A Ledger starts from the tip it last wrote; another writer's commit in between is kept."""
    mine, other = Ledger(bare, sleep=lambda s: None), Ledger(bare)
    mine.record(rec("first"))
    other.record(rec("between"))
    last = mine.record(rec("third"))
    assert sh_git(bare, "log", "--format=%s", "reconciler/status").split() == [
        "third",
        "between",
        "first",
    ]
    assert sh_git(bare, "rev-parse", "reconciler/status").strip() == last
    assert Ledger(bare).read("status/lab/between.json") == '"between"'


def seen(record: Record) -> Callable[[Entry], bool]:
    return lambda e: e.subject == record.subject


def test_a_once_record_that_loses_the_push_race_is_withdrawn(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = clone(origin, tmp_path / "a")
    b = clone(origin, tmp_path / "b")
    Ledger(a, remote="origin").record(rec("a-before"))
    late = Ledger(b, remote="origin", actor="replica-b")  # its commit differs from a's
    late.sync()
    winner = Ledger(a, remote="origin", actor="replica-a")
    won = winner.record(rec("accepted"), once=seen(rec("accepted")))
    # b fetched before a pushed: its own look finds nothing, its push is refused.
    monkeypatch.setattr(late, "_refresh", lambda: None)
    monkeypatch.setattr(late, "_sync_once", lambda: False)
    assert late.record(rec("accepted"), once=seen(rec("accepted"))) == won
    assert sh_git(origin, "log", "--format=%s", "reconciler/status").split() == [
        "accepted",
        "a-before",
    ]
    assert sh_git(b, "rev-parse", "reconciler/status").strip() == won  # b's copy is the remote's
    # A record without ``once`` that loses the same race is replayed, not dropped.
    Ledger(a, remote="origin").record(rec("a-again", path="status/lab/x.json"))
    assert late.record(rec("accepted")) != won
    assert sh_git(origin, "log", "--format=%s", "reconciler/status").split()[:3] == [
        "accepted",
        "a-again",
        "accepted",
    ]


def test_once_records_from_many_clones_at_once_land_once(origin: Path, tmp_path: Path) -> None:
    clones = [clone(origin, tmp_path / f"c{i}") for i in range(4)]
    Ledger(clones[0], remote="origin").record(rec("first"))
    shas: list[str] = []

    def writer(repo: Path) -> Callable[[], None]:
        def job() -> None:
            ledger = Ledger(repo, remote="origin", actor=repo.name)
            ledger.sync()
            shas.append(ledger.record(rec("accepted"), once=seen(rec("accepted"))))

        return job

    run_threads([writer(repo) for repo in clones])
    subjects = sh_git(origin, "log", "--format=%s", "reconciler/status").split()
    assert subjects == ["accepted", "first"]
    assert set(shas) == {sh_git(origin, "rev-parse", "reconciler/status").strip()}


def test_a_once_record_already_on_the_branch_is_not_written_again(bare: Path) -> None:
    ledger = Ledger(bare)
    first = ledger.record(rec("accepted"), once=seen(rec("accepted")))
    assert ledger.record(rec("accepted"), once=seen(rec("accepted"))) == first
    assert sh_git(bare, "log", "--format=%s", "reconciler/status").split() == ["accepted"]
