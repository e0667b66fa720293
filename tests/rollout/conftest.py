"""A private example fleet per test, and helpers to change the config repo and apply it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.config.load import load_config
from reconciler.gitutil import git, identity_env
from reconciler.ledger import Entry, Ledger
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.conftest import fresh_subnet

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Lab:
    repo: Path
    fleet: SimFleet

    def edit(self, path: str, pattern: str, replacement: str, message: str) -> str:
        """Change one file of the config repo with a regex and commit; returns the commit."""
        file = self.repo / path
        text, count = re.subn(pattern, replacement, file.read_text(encoding="utf-8"), flags=re.M)
        assert count, f"{pattern!r} not found in {path}"
        file.write_text(text, encoding="utf-8")
        git(self.repo, "commit", "-q", "-am", message, env=identity_env())
        return git(self.repo, "rev-parse", "HEAD")

    def argv(self, *extra: str) -> list[str]:
        return ["apply", str(self.repo), "--yes", "--ssh-key", str(self.fleet.client_key), *extra]

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """`reconciler apply` as a user runs it: a process of its own."""
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *self.argv(*extra)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def start_apply(self, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "reconciler", *self.argv(*extra)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.repo)

    def entries(self) -> list[Entry]:
        return list(reversed(self.ledger.entries()))  # oldest first

    def subjects(self) -> list[str]:
        return [e.subject for e in self.entries()]

    def counts(self, event: str) -> dict[str, int]:
        """Per-host counters of the lab build set (the one most tests roll out)."""
        lab = load_config(self.repo, "HEAD").buildset("lab")
        return {h.name: self.fleet.count(h.name, event) for h in lab.hosts}

    def uname(self, host: str) -> tuple[str, str]:
        out = self.fleet.ssh(host, "uname -i; uname -v").stdout.splitlines()
        return out[0].strip(), out[1]

    def booted_be(self, host: str) -> str:
        for line in self.fleet.ssh(host, "bectl list -H").stdout.splitlines():
            name, active = line.split("\t")[:2]
            if "N" in active:
                return name
        return ""


def _lab(
    factory: Callable[..., SimFleet],
    base: Path,
    *,
    drop: tuple[str, ...] = (),
    before: Callable[[Path], None] | None = None,
) -> Lab:
    """example-repo on its own subnet, short soaks, without the ``drop`` hosts; and its fleet.

    ``before`` may change the repo further before it is committed and the fleet started.
    """
    repo = copy_example_repo(base / "repo", subnet=fresh_subnet())
    for buildset in ("lab", "db"):
        path = repo / "buildsets" / buildset / "buildset.yaml"
        text = re.sub(r"soak: \d+", "soak: 1", path.read_text())
        for host in drop:
            text = re.sub(rf"(?m)^  {host}:.*\n", "", text)
        path.write_text(text, encoding="utf-8")
    if before is not None:
        before(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Short soaks for tests", env=identity_env())
    return Lab(repo, factory(repo))


@pytest.fixture
def lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    """The whole example fleet."""
    return _lab(sim_fleet_factory, tmp_path)


@pytest.fixture
def small_lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    """The lab build set with its build host and its test host only (faster rollouts)."""
    return _lab(sim_fleet_factory, tmp_path, drop=("web1", "web2"))


def read_until(proc: subprocess.Popen[str], text: str, timeout: float = 120.0) -> str:
    """What ``proc`` printed up to the line containing ``text`` (bounded wait).

    Reads the pipe's file descriptor directly: a buffered ``readline`` after
    ``select`` leaves lines in Python's buffer where ``select`` cannot see them,
    so a line already printed would be noticed only when the next one came.
    """
    import os
    import select
    import time

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break  # the process ended
        seen += chunk.decode(errors="replace")
        lines = seen.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if text in line and line.endswith("\n"):
                return "".join(lines[: index + 1])
    raise AssertionError(f"{text!r} not printed in time; printed:\n{seen[-3000:]}")


def wait_for(predicate: Callable[[], bool], timeout: float = 120.0, step: float = 0.2) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not reached in time")
