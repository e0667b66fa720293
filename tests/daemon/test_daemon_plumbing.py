"""The daemon's clone, ref watch, locks and log formats, against real repos and processes."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reconciler.daemon import run_daemon
from reconciler.daemon.logs import EventLog, setup_logging
from reconciler.daemon.mirror import Mirror, clone_dir, resolve_origin
from reconciler.daemon.watch import RefWatcher
from reconciler.errors import LockHeld, RepoError
from reconciler.lock import RepoLock
from reconciler.settings import Settings
from tests.daemon.daemon_helpers import Upstream, client_key, git


def test_resolve_origin_tells_paths_from_urls(tmp_path: Path) -> None:
    up = Upstream.create(tmp_path)
    local = resolve_origin(str(up.bare))
    assert local.local == up.bare.resolve() and local.git_dir == up.bare.resolve()
    work = resolve_origin(f"file://{up.work}")
    assert work.git_dir == (up.work / ".git").resolve()
    for url in (
        "https://git.example.org/fleet.git",
        "git@git.example.org:ops/fleet.git",
        "ssh://git@host/fleet.git",
    ):
        assert not resolve_origin(url).is_local
    with pytest.raises(RepoError, match="no such directory"):
        resolve_origin(str(tmp_path / "nope"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepoError, match="not a git repository"):
        resolve_origin(str(tmp_path / "plain"))


def test_mirror_clones_fetches_and_never_touches_the_ledger_branch(tmp_path: Path) -> None:
    up = Upstream.create(tmp_path)
    first = up.commit({"a": "1"})
    up.push()
    git(up.work, "push", "-q", "origin", "HEAD:refs/heads/other")
    mirror = Mirror(tmp_path / "work", resolve_origin(str(up.bare)), "main")
    assert mirror.path == clone_dir(tmp_path / "work", resolve_origin(str(up.bare)))
    mirror.ensure()
    assert mirror.tip("main") == first
    assert mirror.tip("other") is None  # only the tracked branch is fetched
    assert mirror.tip("nosuch") is None
    # A local ledger commit not yet on the origin survives a fetch.
    git(mirror.path, "update-ref", "refs/heads/reconciler/status", first)
    second = up.commit({"a": "2"})
    up.push()
    mirror.fetch()
    assert mirror.tip("main") == second
    assert git(mirror.path, "rev-parse", "refs/heads/reconciler/status") == first
    mirror.ensure()  # idempotent on an existing clone
    assert git(mirror.path, "config", "remote.origin.url") == str(up.bare.resolve())
    # The tracked branch deleted on the origin: no tip, no error.
    git(up.bare, "update-ref", "-d", "refs/heads/main")
    mirror.fetch()
    assert mirror.tip("main") is None


def test_a_push_to_a_local_bare_repo_is_seen_within_2_seconds(tmp_path: Path) -> None:
    up = Upstream.create(tmp_path)
    up.commit({"a": "1"})
    up.push()
    seen = threading.Event()
    paths: list[str] = []

    def changed(path: str) -> None:
        paths.append(path)
        seen.set()

    with RefWatcher(up.bare, changed, ignore=["reconciler/status"]):
        time.sleep(0.1)
        git(
            up.bare, "update-ref", "refs/heads/reconciler/status", git(up.bare, "rev-parse", "main")
        )
        assert not seen.wait(0.5), f"own ledger branch woke the daemon: {paths}"
        up.commit({"a": "2"})
        started = time.monotonic()
        up.push()
        assert seen.wait(2.0), "push not seen"
    assert time.monotonic() - started < 2.0
    assert any("refs/heads/main" in p for p in paths)


def test_locks_refuse_a_second_daemon_on_the_same_repo(tmp_path: Path) -> None:
    up = Upstream.create(tmp_path)
    up.commit({"sets.txt": "lab heal\n"})
    up.push()
    settings = Settings(
        repo=str(up.bare), work_dir=str(tmp_path / "other-work"), ssh_key=str(client_key(tmp_path))
    )
    with RepoLock(up.bare, command="run"), pytest.raises(LockHeld, match="another reconciler"):
        run_daemon(settings, once=True)
    # The daemon's clone is locked too (a URL origin has no source lock to take).
    mirror = Mirror(settings.work_path, resolve_origin(settings.repo), "main")
    mirror.ensure()
    with RepoLock(mirror.path, command="run"), pytest.raises(LockHeld):
        run_daemon(settings, once=True)


def test_json_and_text_log_lines() -> None:
    stream = io.StringIO()
    handler = setup_logging("json", stream=stream)
    try:
        log = EventLog()
        log.info("generation.new", "new commit abc", generation="a" * 40, host=None)
        logging.getLogger("reconciler.ledger").warning("cannot sync %s", "origin")
        line, other = (json.loads(x) for x in stream.getvalue().splitlines())
        assert list(line)[:4] == ["time", "level", "event", "message"]
        assert line["level"] == "info" and line["event"] == "generation.new"
        assert line["message"] == "new commit abc" and line["generation"] == "a" * 40
        assert "host" not in line and line["time"].endswith("Z")
        assert other["event"] == "reconciler.ledger" and other["message"] == "cannot sync origin"
        stream.truncate(0)
        stream.seek(0)
        setup_logging("text", stream=stream)
        log.warning("repo.fetch", "cannot fetch", repo="/srv/x.git")
        text = stream.getvalue()
        assert "warning generation" not in text
        assert text.rstrip().endswith("repo.fetch: cannot fetch (repo=/srv/x.git)")
        assert len(logging.getLogger("reconciler").handlers) == 1  # replaced, not added
    finally:
        logging.getLogger("reconciler").removeHandler(handler)
        for extra in list(logging.getLogger("reconciler").handlers):
            logging.getLogger("reconciler").removeHandler(extra)
        logging.getLogger("reconciler").propagate = True


def _cli(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,  # type: ignore[arg-type]
    )


def test_cli_second_daemon_refuses_sighup_polls_sigterm_exits_0(tmp_path: Path) -> None:
    up = Upstream.create(tmp_path)
    settings = tmp_path / "reconciler.toml"
    settings.write_text(
        f'repo = "{up.bare}"\nwork_dir = "{tmp_path / "work"}"\npoll_interval = 30\n'
        f'log_format = "json"\nssh_key = "{client_key(tmp_path)}"\n'
    )
    # No branch yet: the daemon waits for it, holding the locks.
    first = _cli("--config", str(settings))
    try:
        deadline = time.monotonic() + 15
        while RepoLock.holder(up.bare) is None:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "first daemon never took the lock"
            time.sleep(0.05)
        second = _cli("--config", str(settings), "--work-dir", str(tmp_path / "work2"))
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert (
            err.strip()
            .splitlines()[-1]
            .startswith("reconciler: error: another reconciler is running")
        )
        assert "Traceback" not in err
        first.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        events = [line["event"] for line in lines]
        assert events[0] == "daemon.start" and events[-1] == "daemon.stop"
        assert "repo.branch" in events
        signals = [line["message"] for line in lines if line["event"] == "daemon.signal"]
        assert signals == ["SIGHUP: polling now", "SIGTERM: stopping at a safe point"]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_a_push_wakes_the_daemon_long_before_the_poll(tmp_path: Path) -> None:
    from reconciler.daemon import open_daemon
    from reconciler.daemon.jobs import Hooks
    from tests.daemon.daemon_helpers import ScriptedConverge, fake_load, wait_for

    up = Upstream.create(tmp_path)
    up.commit({"sets.txt": "lab heal\n"}, "first")
    up.push()
    settings = Settings(repo=str(up.bare), work_dir=str(tmp_path / "work"), poll_interval=600)
    converge = ScriptedConverge()
    with open_daemon(settings, hooks=Hooks(converge=converge, load_config=fake_load)) as daemon:
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: len(converge.calls) == 1, what="the first rollout")
            second = up.commit({"sets.txt": "lab heal\n"}, "second")
            pushed = time.monotonic()
            up.push()  # the watch, not the 600 s poll, must see this
            wait_for(lambda: second in converge.generations(), timeout=5, what="the push")
            assert time.monotonic() - pushed < 2.0
        finally:
            daemon.request_shutdown()
            thread.join(10)
    assert not thread.is_alive()
