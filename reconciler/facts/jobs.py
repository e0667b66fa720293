"""Running reconciler jobs: ``pgrep -F PIDFILE``, and the pidfile itself.

The build and install jobs run under daemon(8) with ``-p PIDFILE``. daemon
creates the pidfile (empty, flock(2)ed) before it forks and writes the pid
once the child exists (``usr.sbin/daemon/daemon.c``: open_pid_files() before
daemon(3), pidfile_write() in the child). pgrep with ``-F`` matches only the
process the pidfile names: exit 0 and the pid when it runs, 1 when it is
gone, 3 when the file is missing or empty (``bin/pkill/pkill.c`` takepid()).
So a job counts as running when pgrep finds it, or when its pidfile exists
and is empty (``cat`` succeeds with no output): it is starting.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe
from reconciler.remote import BUILD_PIDFILE, INSTALL_PIDFILE

PROBES = (
    Probe("job-build", ("pgrep", "-F", BUILD_PIDFILE)),
    Probe("job-install", ("pgrep", "-F", INSTALL_PIDFILE)),
    Probe("pidfile-build", ("cat", BUILD_PIDFILE)),
    Probe("pidfile-install", ("cat", INSTALL_PIDFILE)),
)


@dataclass(frozen=True)
class Jobs:
    build_pid: int | None
    install_pid: int | None
    build_starting: bool = False  # daemon(8)'s pidfile exists, its pid not written yet
    install_starting: bool = False

    @property
    def build_running(self) -> bool:
        return self.build_pid is not None or self.build_starting

    @property
    def install_running(self) -> bool:
        return self.install_pid is not None or self.install_starting


def _pid(out: Output) -> int | None:
    words = out.stdout.split()
    return int(words[0]) if out.ok and words and words[0].isdigit() else None


def _starting(pgrep: Output, pidfile: Output) -> bool:
    return not pgrep.ok and pidfile.ok and not pidfile.stdout.strip()


def parse(outputs: dict[str, Output]) -> Jobs:
    missing = Output(1, "")
    return Jobs(
        build_pid=_pid(outputs["job-build"]),
        install_pid=_pid(outputs["job-install"]),
        build_starting=_starting(outputs["job-build"], outputs.get("pidfile-build", missing)),
        install_starting=_starting(outputs["job-install"], outputs.get("pidfile-install", missing)),
    )
