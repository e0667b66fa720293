"""The ledger tells its owner when another writer won a compare-and-swap (real repositories)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from reconciler.ledger import Ledger, Record


def _record(ledger: Ledger, subject: str) -> str:
    return ledger.record(
        Record(
            subject=subject,
            generation="a" * 40,
            buildset=None,
            host=None,
            stage="config",
            outcome="validated",
        )
    )


def test_a_lost_local_compare_and_swap_is_reported(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    conflicts: list[str] = []
    mine = Ledger(tmp_path, on_conflict=lambda: conflicts.append("mine"))
    theirs = Ledger(tmp_path)
    _record(mine, "one")
    _record(theirs, "two")  # moves the branch under mine's remembered tip
    _record(mine, "three")
    assert conflicts == ["mine"]
    assert [e.subject for e in mine.entries()] == ["three", "two", "one"]


def test_a_rejected_push_is_reported(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    clones = []
    for name in ("a", "b"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True,
                       capture_output=True)  # fmt: skip
        clones.append(clone)
    conflicts: list[str] = []
    b = Ledger(clones[1], remote="origin")
    race = {"armed": False}

    def now() -> datetime:
        # Called by a's record() after it fetched and before it pushes: b pushes right then.
        if race["armed"]:
            race["armed"] = False
            _record(b, "from b, in between")
        return datetime.now(UTC)

    a = Ledger(clones[0], remote="origin", now=now, on_conflict=lambda: conflicts.append("a"))
    _record(a, "from a")
    assert conflicts == []
    race["armed"] = True
    _record(a, "from a again")  # its push is refused (b got there first), replayed, pushed
    assert conflicts == ["a"]
    subjects = [e.subject for e in Ledger(origin).entries()]
    assert subjects == ["from a again", "from b, in between", "from a"]
