"""The host lock's words and command (pure): who holds it, and nothing in it parsed as shell."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from reconciler.rollout.hostlock import holder_words, identity, same_process, take_command


def test_the_holder_in_words() -> None:
    text = "pid=4242 machine=ops1 command=apply repo=/srv/my%20cfg since=2026-12-01T10:00:00Z"
    assert holder_words(text) == (
        "pid 4242 on ops1 (apply from /srv/my cfg, since 2026-12-01T10:00:00Z)"
    )
    assert holder_words("") == "holder unknown"


def test_same_process_is_pid_and_machine() -> None:
    mine = identity("run", "/var/db/reconciler/repo")
    assert same_process(mine, identity("apply", "/elsewhere"))
    assert not same_process(mine.replace("pid=", "pid=1"), mine)
    assert not same_process("", mine)


def test_take_command_quotes_what_it_is_given() -> None:
    who = identity("apply", "/tmp/x'; touch /tmp/pwned; '$(id)")
    argv = take_command(who)
    assert argv[:2] == ["sh", "-c"]
    assert who in argv and "$(id)" not in argv[2]
    # Run it locally with a fake lockf on PATH that only runs its command: the holder
    # writes ``who`` verbatim and says "locked" first.
    fake = (
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -k|-s) shift;; -t) shift 2;; *) break;; "
        'esac; done\nshift; exec "$@"\n'
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "lockf").write_text(fake)
        (Path(tmp) / "lockf").chmod(0o755)
        lock = Path(tmp) / "lock"
        assert argv[4] == "/var/run/reconciler.lock"
        local = [*argv[:4], str(lock), *argv[5:]]  # a private file, not this machine's /var/run
        done = subprocess.run(
            local,
            input="",
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "PATH": f"{tmp}:{os.environ['PATH']}"},
            check=False,
        )
        assert done.stdout.startswith("locked"), done
        assert lock.read_text().splitlines()[0] == who  # written verbatim
        assert lock.read_text().splitlines()[1].startswith("released=")  # when it let go
    assert not Path("/tmp/pwned").exists()


def test_facts_are_stale_unless_the_last_holder_left_before_they_were_read() -> None:
    from reconciler.rollout.hostlock import _stale

    mine = identity("apply", "/r")
    other = "pid=1 machine=elsewhere command=run repo=/d since=2026-12-01T10:00:00Z"
    assert not _stale(mine + " now=100", mine, None)  # we held it last ourselves
    assert _stale(other + " now=100", mine, 5.0)  # it never said when it let go (SIGKILL)
    assert _stale(other + " released=97 now=100", mine, 5.0)  # let go after we looked
    assert not _stale(other + " released=90 now=100", mine, 5.0)  # before we looked
    assert _stale(other + " released=90 now=100", mine, None)  # our facts' age unknown
