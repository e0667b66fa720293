"""Running reconciler jobs: ``pgrep -F PIDFILE`` (exit 0 and the pid when it runs).

The build and install jobs run under daemon(8) with ``-p PIDFILE``; pgrep
with ``-F`` only matches the process the pidfile names, and fails when the
file is missing or the process is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe
from reconciler.remote import BUILD_PIDFILE, INSTALL_PIDFILE

PROBES = (
    Probe("job-build", ("pgrep", "-F", BUILD_PIDFILE)),
    Probe("job-install", ("pgrep", "-F", INSTALL_PIDFILE)),
)


@dataclass(frozen=True)
class Jobs:
    build_pid: int | None
    install_pid: int | None

    @property
    def build_running(self) -> bool:
        return self.build_pid is not None

    @property
    def install_running(self) -> bool:
        return self.install_pid is not None


def _pid(out: Output) -> int | None:
    words = out.stdout.split()
    return int(words[0]) if out.ok and words and words[0].isdigit() else None


def parse(outputs: dict[str, Output]) -> Jobs:
    return Jobs(build_pid=_pid(outputs["job-build"]), install_pid=_pid(outputs["job-install"]))
