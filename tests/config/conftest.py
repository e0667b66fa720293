"""Fixtures for the config tests: a private copy of example-repo and a CLI runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A writable copy of example-repo."""
    target = tmp_path / "repo"
    shutil.copytree(EXAMPLE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace exactly one occurrence of ``old`` (so a test cannot silently edit nothing)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def validate(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``reconciler validate ARGS...`` in-process; return exit code and output."""

    def run(*args: str | Path) -> Result:
        code = main(["validate", *map(str, args)])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return Result(code, captured.out, captured.err)

    return run
