"""Shared helpers for the daemon tests: real git repos, a fake clock, a scripted converge."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.config.model import (
    BuildSet,
    Config,
    Host,
    ReconcilerPolicy,
    RolloutPolicy,
    Source,
)
from reconciler.errors import ConfigInvalid, Problem, RepoError
from reconciler.rollout.engine_types import HostResult, Report

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Alice Admin",
    "GIT_AUTHOR_EMAIL": "alice@example.org",
    "GIT_COMMITTER_NAME": "Alice Admin",
    "GIT_COMMITTER_EMAIL": "alice@example.org",
}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    full.update(GIT_ENV)
    full.update(env or {})
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=full, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Upstream:
    """A bare 'origin' repo plus a work tree that pushes to it (the administrator's checkout)."""

    bare: Path
    work: Path

    @classmethod
    def create(cls, root: Path) -> Upstream:
        bare = root / "config.git"
        work = root / "checkout"
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(root, "init", "-q", "-b", "main", str(work))
        git(work, "remote", "add", "origin", str(bare))
        return cls(bare, work)

    def commit(
        self, files: dict[str, str], message: str = "change", *, sign_key: Path | None = None
    ) -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(self.work, "add", name)
        args = ["commit", "-q", "--allow-empty", "-m", message]
        if sign_key is not None:
            args = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_key}", *args, "-S"]
        git(self.work, *args)
        return git(self.work, "rev-parse", "HEAD")

    def push(self) -> None:
        git(self.work, "push", "-q", "origin", "HEAD:refs/heads/main")

    def ledger_subjects(self, branch: str = "reconciler/status") -> list[str]:
        found = subprocess.run(
            ["git", "-C", str(self.bare), "log", "--format=%s", branch, "--"],
            capture_output=True,
            text=True,
            check=False,
        )
        return found.stdout.splitlines() if found.returncode == 0 else []

    def ledger_trailers(self, branch: str = "reconciler/status") -> list[dict[str, str]]:
        found = subprocess.run(
            [
                "git",
                "-C",
                str(self.bare),
                "log",
                "--format=%(trailers:only,unfold)%x00",
                branch,
                "--",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:
            return []
        entries = []
        for chunk in found.stdout.split("\0"):
            fields = {}
            for line in chunk.strip().splitlines():
                key, _, value = line.partition(":")
                fields[key.strip().removeprefix("Reconciler-").lower()] = value.strip()
            if fields:
                entries.append(fields)
        return entries

    def ledger_body(self, commit: str = "reconciler/status") -> str:
        return git(self.bare, "log", "-1", "--format=%B", commit, "--")


class FakeClock:
    """Time moves only when the loop sleeps; a short real pause lets worker threads run."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps = 0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.sleeps += 1
        if stop is not None and stop.wait(0.002):
            return True
        self.t += max(seconds, 0.0)
        return False


def fake_config(commit: str, text: str) -> Config:
    """A Config from lines '<set> heal|report' (the real loader is tested elsewhere)."""
    sets = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, drift = line.split()
        host = Host(
            name=f"{name}-h1", buildset=name, address="127.0.0.1", kernconf="GENERIC", stage="test"
        )
        sets.append(
            BuildSet(
                name=name,
                arch="amd64",
                build_host=host.name,
                jobs=1,
                hosts=(host,),
                make_conf="",
                src_conf="",
                rollout=RolloutPolicy(drift=drift),  # type: ignore[arg-type]
            )
        )
    return Config(
        source=Source(url="https://git.example/src.git", branch="main", revision="a" * 40),
        src_host=sets[0].build_host,
        buildsets=tuple(sets),
        kernels=(),
        known_hosts="",
        policy=ReconcilerPolicy(),
        commit=commit,
    )


def fake_load(repo: Path, rev: str) -> Config:
    """Load ``sets.txt`` of ``rev``; a file 'invalid' makes the commit invalid."""
    done = subprocess.run(
        ["git", "-C", str(repo), "show", f"{rev}:sets.txt"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RepoError(f"{rev}: no sets.txt")
    if done.stdout.startswith("invalid"):
        raise ConfigInvalid(
            [
                Problem("fleet.yaml", 3, 1, "source.revision must be 40 hex digits"),
                Problem("buildsets/lab/buildset.yaml", 7, 5, "unknown host 'nosuch'"),
            ]
        )
    return fake_config(rev, done.stdout)


@dataclass
class Call:
    generation: str
    buildsets: tuple[str, ...]  # () : every build set (the daemon's calls)


@dataclass
class ScriptedConverge:
    """A converge stand-in: records calls; behaviour per generation set by the test.

    behaviour: "ok" (converged), "fail" (a host failed), "unreachable" (not converged, no failure),
    "halt" (the build failed: every host skipped),
    "block" (runs until ``stop`` is set, then returns interrupted), "raise" (a bug).
    """

    behaviour: dict[str, str] = field(default_factory=dict)
    default: str = "ok"
    calls: list[Call] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    stops: list[threading.Event] = field(default_factory=list)  # the stop event of each call
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, config: Config, **kwargs: Any) -> Report:
        generation = config.commit or ""
        asked = tuple(kwargs.get("buildsets") or ())
        names = asked or tuple(bs.name for bs in config.buildsets)
        with self.lock:
            self.calls.append(Call(generation, asked))
            self.stops.append(kwargs["stop"])
        mode = self.behaviour.get(generation, self.default)
        progress: Callable[..., None] = kwargs["progress"]
        from reconciler.rollout.engine_types import Event
        from reconciler.vocabulary import EventKind

        progress(Event(EventKind.STAGE, f"fake rollout of {generation[:12]}", buildset=names[0]))
        if mode == "block":
            self.running.set()
            stop: threading.Event = kwargs["stop"]
            assert stop.wait(20), "the daemon never set stop"
            return Report(False, True, (), ("interrupted",))
        if mode == "raise":
            raise RuntimeError("engine bug")
        outcome = {
            "ok": "success",
            "fail": "failure",
            "unreachable": "unreachable",
            "halt": "skipped",  # the engine halted at the source or build stage
        }[mode]
        results = tuple(HostResult(f"{n}-h1", n, "test", outcome, mode) for n in names)
        return Report(mode == "ok", False, results, (f"{', '.join(names)}: {mode}",))

    def generations(self) -> list[str]:
        with self.lock:
            return [c.generation for c in self.calls]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
