"""RepoLock: one reconciler per config repo; a dead holder never holds it."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import LockHeld, RepoError
from reconciler.lock import RepoLock, lock_path

HOLD = (
    "import sys, time; from pathlib import Path; from reconciler.lock import RepoLock\n"
    "lock = RepoLock(Path(sys.argv[1]), command='apply').acquire()\n"
    "print('locked', flush=True)\n"
    "time.sleep(60)\n"
)


def hold_in_subprocess(repo: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(repo)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_file_lives_in_the_git_dir(bare: Path, checkout: Path, tmp_path: Path) -> None:
    assert lock_path(bare) == bare.resolve() / "reconciler.lock"
    assert lock_path(checkout) == checkout.resolve() / ".git" / "reconciler.lock"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert lock_path(plain) == plain / ".reconciler.lock"
    assert lock_path(bare, "daemon") == bare.resolve() / "daemon.lock"
    with pytest.raises(RepoError, match="no such directory"):
        lock_path(tmp_path / "missing")


def test_held_lock_refuses_a_second_holder_with_details(checkout: Path) -> None:
    assert RepoLock.holder(checkout) is None
    with RepoLock(checkout, command="apply") as lock:
        assert lock.held
        holder = RepoLock.holder(checkout)
        assert holder is not None
        assert holder["pid"] == os.getpid() and holder["command"] == "apply"
        with pytest.raises(LockHeld) as info:
            RepoLock(checkout, command="run").acquire()
        message = str(info.value)
        assert message.startswith(
            f"another reconciler is running on {checkout}: pid {os.getpid()} (apply, since "
        )
        assert message.endswith("); wait for it or stop it")
        assert "since" in message and ":" in message.split("since ")[1]
        # the holder's details survive a refused attempt
        assert RepoLock.holder(checkout) == holder
    assert not lock.held
    assert RepoLock.holder(checkout) is None
    with RepoLock(checkout, command="run"):  # free again
        assert RepoLock.holder(checkout)["command"] == "run"  # type: ignore[index]


def test_other_process_holding_it_then_sigkilled(bare: Path) -> None:
    proc = hold_in_subprocess(bare)
    try:
        holder = RepoLock.holder(bare)
        assert holder is not None and holder["pid"] == proc.pid
        with pytest.raises(LockHeld, match=f"pid {proc.pid} \\(apply, since"):
            RepoLock(bare).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # the kernel dropped the flock with the process; stale details do not count
    assert json.loads(lock_path(bare).read_text())["pid"] == proc.pid
    assert RepoLock.holder(bare) is None
    with RepoLock(bare, command="apply") as lock:
        assert lock.held
        assert RepoLock.holder(bare)["pid"] == os.getpid()  # type: ignore[index]


def test_a_holder_probe_does_not_make_an_acquirer_fail(bare: Path) -> None:
    for _ in range(20):
        assert RepoLock.holder(bare) is None
        with RepoLock(bare):
            pass
    # A probe's shared lock, held briefly while acquire() runs: acquire retries and wins.
    fd = os.open(lock_path(bare), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    releaser = threading.Timer(0.05, os.close, args=(fd,))
    releaser.start()
    with RepoLock(bare) as lock:
        assert lock.held
    releaser.join()
    # A shared lock that stays: acquire gives up after its short grace.
    fd = os.open(lock_path(bare), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    started = time.monotonic()
    try:
        with pytest.raises(LockHeld, match="another reconciler is running"):
            RepoLock(bare).acquire()
    finally:
        os.close(fd)
    assert time.monotonic() - started < 2


def test_release_is_idempotent_and_not_reentrant(tmp_path: Path) -> None:
    lock = RepoLock(tmp_path, command="apply").acquire()
    with pytest.raises(RuntimeError):
        lock.acquire()
    lock.release()
    lock.release()
    assert (tmp_path / ".reconciler.lock").read_text() == ""
