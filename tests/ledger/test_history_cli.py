"""`reconciler history` against real repositories."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.ledger import Ledger, Record

GEN = "5a3e9b1c2d4f" + "0" * 28
BUILD = "3f2a9c1e0b7d" + "1" * 52


def fill(repo: Path) -> list[str]:
    times = iter(datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=i) for i in range(10))
    ledger = Ledger(repo, now=lambda: next(times))
    lab = {"generation": GEN, "buildset": "lab", "build": BUILD}
    shas = [
        ledger.record(
            Record(
                subject="lab: build started",
                host="builder",
                stage="build",
                outcome="started",
                **lab,
            )
        ),
        ledger.record(
            Record(
                subject="tester: installed and healthy",
                host="tester",
                stage="test",
                outcome="success",
                **lab,
            )
        ),
        ledger.record(
            Record(
                subject="web1: health check failed; rolled back",
                host="web1",
                stage="production",
                outcome="rolled-back",
                body="service nginx status: exit 1\nback on rc-aaaaaaaaaaaa",
                **lab,
            )
        ),
        ledger.record(
            Record(
                subject="db1: installed",
                generation="worktree",
                buildset="db",
                host="db1",
                stage="production",
                outcome="success",
            )
        ),
    ]
    return shas


def test_default_is_one_line_per_outcome_without_step_starts(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(checkout)
    assert main(["history", str(checkout)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "2026-03-01 12:03:00 +0000  success     db1: installed",
        "2026-03-01 12:02:00 +0000  rolled-back web1: health check failed; rolled back",
        "2026-03-01 12:01:00 +0000  success     tester: installed and healthy",
    ]
    assert "1 step entry not shown: --steps shows them" in captured.err
    assert main(["history", str(checkout), "--steps", "-n", "1", "--host", "builder"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-03-01 12:00:00 +0000  started     lab: build started"
    ]
    # Repeatable filters, -n counts what is shown.
    assert main(["history", str(checkout), "--host", "db1", "--host", "web1", "-n", "5"]) == 0
    assert [line.split(None, 4)[4] for line in capsys.readouterr().out.splitlines()] == [
        "db1: installed", "web1: health check failed; rolled back",
    ]  # fmt: skip


def test_verbose_text_newest_first_with_ids_and_body(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shas = fill(checkout)
    assert main(["history", str(checkout), "--steps", "-v"]) == 0
    out = capsys.readouterr().out
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 4
    assert blocks[0].splitlines()[0] == "2026-03-01 12:03:00 +0000  success     db1: installed"
    assert blocks[0].splitlines()[1].split() == [
        "buildset", "db", "host", "db1", "stage", "production", "generation", "worktree",
        "commit", shas[3][:12],
    ]  # fmt: skip
    web1 = blocks[1].splitlines()
    assert (
        web1[0] == "2026-03-01 12:02:00 +0000  rolled-back web1: health check failed; rolled back"
    )
    assert f"generation {GEN[:12]}" in web1[1] and f"build {BUILD[:12]}" in web1[1]
    assert web1[2:] == ["    | service nginx status: exit 1", "    | back on rc-aaaaaaaaaaaa"]
    assert "lab: build started" in blocks[3]


def test_filters_and_limit(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(bare)
    assert main(["history", str(bare), "--host", "web1"]) == 0
    out = capsys.readouterr().out
    assert "web1: health check failed" in out and "tester" not in out
    assert main(["history", str(bare), "--buildset", "lab", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert [b.split(None, 4)[4] for b in out.splitlines() if b.startswith("2026")] == [
        "web1: health check failed; rolled back", "tester: installed and healthy",
    ]  # fmt: skip
    assert main(["history", str(bare), "--host", "nohost"]) == 0
    assert capsys.readouterr().out.strip() == "no ledger entries for host nohost"


def test_json(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shas = fill(bare)
    assert main(["history", str(bare), "--format", "json", "--limit", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["commit"] for d in data] == [shas[3], shas[2]]
    assert data[1] == {
        "commit": shas[2],
        "time": "2026-03-01T12:02:00+00:00",
        "subject": "web1: health check failed; rolled back",
        "body": "service nginx status: exit 1\nback on rc-aaaaaaaaaaaa",
        "generation": GEN,
        "buildset": "lab",
        "host": "web1",
        "stage": "production",
        "outcome": "rolled-back",
        "build": BUILD,
        "step": None,
        "packages": None,
        "actor": None,
        "command": None,
    }
    assert data[0]["build"] is None


def test_no_ledger_yet_is_a_clear_line_and_exit_0(
    bare: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", str(bare)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"no ledger yet: branch reconciler/status does not exist in {bare}; run reconciler apply"
    )
    assert main(["history", str(bare), "--format", "json", "--branch", "other/ledger"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "branch other/ledger does not exist" in captured.err


def test_branch_option(bare: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Ledger(bare, branch="ops/ledger").record(
        Record(
            subject="x: ok",
            generation="worktree",
            buildset=None,
            host="x",
            stage=None,
            outcome="success",
        )
    )
    assert main(["history", str(bare), "--branch", "ops/ledger"]) == 0
    assert "x: ok" in capsys.readouterr().out


def test_repo_from_settings_file_and_default_dot(
    bare: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(bare)
    settings = tmp_path / "reconciler.toml"
    settings.write_text(f'repo = "{bare}"\n')
    assert main(["history", "--config", str(settings), "--limit", "1"]) == 0
    assert "db1: installed" in capsys.readouterr().out
    monkeypatch.chdir(bare)
    monkeypatch.delenv("RECONCILER_CONFIG", raising=False)
    monkeypatch.setattr("reconciler.settings.DEFAULT_PATHS", ())
    assert main(["history", "--limit", "1"]) == 0
    assert "db1: installed" in capsys.readouterr().out


def test_url_repo_is_read_through_a_temporary_fetch(
    bare: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(bare)
    assert main(["history", f"file://{bare}", "--host", "tester"]) == 0
    assert "tester: installed and healthy" in capsys.readouterr().out
    empty = bare.parent / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
    assert main(["history", f"file://{empty}"]) == 0
    assert "no ledger yet" in capsys.readouterr().out


def test_user_errors_exit_1_or_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"reconciler: error: {tmp_path / 'missing'}: no such directory"
    assert main(["history", str(tmp_path)]) == 1
    assert "is not a git repository" in capsys.readouterr().err
    assert main(["history", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit: must be at least 1" in capsys.readouterr().err
    assert main(["history", "file:///nonexistent/repo.git"]) == 1
    assert "cannot fetch reconciler/status" in capsys.readouterr().err
