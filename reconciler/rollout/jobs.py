"""Detached jobs on a host: start once, re-attach, follow the log, wait bounded.

A build or an install runs under daemon(8) (scripts.detached), so it survives
a dropped SSH session and a reconciler that died. Its state is read, never
remembered: the exit file says "finished with N", a live pidfile process says
"running", neither says "gone" (the host rebooted, or the job was killed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from reconciler.clock import Clock
from reconciler.errors import CommandTimeout, HostUnreachable
from reconciler.rollout.scripts import Job, job_state_command, poll_command, start_command
from reconciler.transport.ssh import Connection

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class JobState:
    state: Literal["finished", "running", "gone"]
    exit_code: int | None = None


def parse_job_state(output: str) -> JobState:
    """Pure: the output of :func:`scripts.job_state_command`."""
    text = output.strip()
    if text.split()[:1] == ["exit"]:
        value = text[4:].strip()
        return JobState("finished", int(value) if value.lstrip("-").isdigit() else 255)
    if text == "running":
        return JobState("running")
    return JobState("gone")


def job_state(conn: Connection, job: Job) -> JobState:
    result = conn.run(job_state_command(job), timeout=60)
    return parse_job_state(result.stdout)


def start(conn: Connection, job: Job, command: list[str], dirs: Sequence[str] = ()) -> None:
    """Start ``command`` (a scripts.detached(...) list); a previous run's exit file goes first."""
    prepared = conn.run(start_command(job, *dirs), timeout=60)
    if not prepared.ok:
        raise JobError(f"{job.name} did not start: {(prepared.stderr or prepared.stdout).strip()}")
    result = conn.run(command, timeout=120)
    if not result.ok:
        raise JobError(f"{job.name} did not start: {(result.stderr or result.stdout).strip()}")


class JobError(Exception):
    """A job could not be started or followed (turned into an outcome by the caller)."""


@dataclass
class LogFollower:
    """Reads a job's log incrementally and hands complete lines on."""

    job: Job
    on_line: Callable[[str], None]
    offset: int = 0
    _partial: str = ""

    def feed(self, chunk: str) -> None:
        """Take the next piece of the log; complete lines go to ``on_line``."""
        if not chunk:
            return
        self.offset += len(chunk.encode("utf-8", errors="surrogateescape"))
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.on_line(line)

    def poll(self, conn: Connection) -> JobState:
        """One round trip: the job's state, and what its log gained since the last poll."""
        result = conn.run(poll_command(self.job, self.offset), timeout=60)
        state_line, _, chunk = result.stdout.partition("\n")
        self.feed(chunk)
        return parse_job_state(state_line)

    def tail(self, conn: Connection, count: int = 20) -> list[str]:
        result = conn.run(["tail", "-n", str(count), self.job.log], timeout=60)
        return result.stdout.splitlines()


def wait(
    conn: Connection,
    job: Job,
    *,
    timeout: float,
    clock: Clock,
    on_line: Callable[[str], None] = lambda line: None,
    stopped: Callable[[], bool] = lambda: False,
) -> JobState:
    """Follow ``job`` until it finishes or is gone; bounded by ``timeout``.

    Connection drops are ridden out (the job is detached); the wait itself is
    what is bounded. When ``stopped()`` (Ctrl-C, SIGTERM) the wait ends with the
    job still ``running``: it runs detached under daemon(8) on the host, and the
    next run re-attaches to it (await-build, await-install), so nobody waits
    hours for a buildworld to stop.
    """
    follower = LogFollower(job, on_line)
    deadline = clock.now() + timeout
    while True:
        try:
            state = follower.poll(conn)
        except (HostUnreachable, CommandTimeout):
            # The job is detached; a lost connection is not a lost job.
            state = JobState("running")
        if state.state != "running" or stopped():
            return state
        if clock.now() >= deadline:
            raise CommandTimeout(
                getattr(getattr(conn, "host", None), "name", "host"),
                f"{job.name} still running after {timeout:g}s",
            )
        clock.sleep(POLL_SECONDS)
