"""Where the controller's CPU goes in an idle cycle: a profile of every thread.

    .venv/bin/python bench/profile_idle.py [--hosts 20] [--cycles 5] [--top 25]

The fleet of bench/idle_cycle.py (tests/scale/insync.py: N hosts adopted and
in sync), one persistent pool, one warm-up cycle, then ``--cycles`` idle
cycles (``converge(..., pool=P)``, what ``reconciler run`` does each poll)
under cProfile. cProfile sees one thread only, so every thread started while
profiling (converge's and observe's workers) gets a profiler of its own and
the stats are added up; paramiko's reader threads (one per connection,
started at the warm-up) are not in it: run ``py-spy record`` on the process
to see them. Prints the CPU per host per cycle (this process and its git
children) and the top functions by own time, then by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from idle_cycle import Commands, cpu

from reconciler.config.load import load_config
from reconciler.facts.connect import fleet_pool
from reconciler.ledger import Ledger
from reconciler.rollout.engine import converge
from reconciler.settings import Settings
from tests.scale.insync import in_sync_fleet


class EveryThread:
    """cProfile in this thread and in every thread started while it is on."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start(self, frame: FrameType, event: str, arg: Any) -> None:
        # threading calls this once in each new thread, before its target runs:
        # the thread's own profiler replaces it from here on.
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> EveryThread:
        threading.setprofile(self._start)
        main = cProfile.Profile()
        self.profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.profiles[0].disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def stats(self) -> pstats.Stats:
        out = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=out)
        for profile in self.profiles[1:]:
            profile.disable()
            stats.add(profile)
        return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    n = args.hosts
    with tempfile.TemporaryDirectory(prefix=f"bench-profile-idle-{n}-") as tmp:
        fleet, repo = in_sync_fleet(Path(tmp), n, batch=20)
        try:
            config = load_config(repo, "HEAD")
            settings = Settings(repo=str(repo), ssh_key=str(fleet.client_key), parallel=16)
            ledger = Ledger(repo)
            with fleet_pool(config, settings, max_idle=600.0) as pool:
                converge(config, settings=settings, ledger=ledger, pool=pool)  # connects
                with Commands() as commands, EveryThread() as profiler:
                    c0, t0 = cpu(), time.perf_counter()
                    for _ in range(args.cycles):
                        converge(config, settings=settings, ledger=ledger, pool=pool)
                    wall, spent = time.perf_counter() - t0, cpu() - c0
        finally:
            fleet.down()
    print(
        f"{n} hosts, {args.cycles} idle cycles under the profiler: "
        f"{wall / args.cycles:.2f} s/cycle, "
        f"{1000 * spent / args.cycles / n:.2f} ms CPU/host/cycle (profiling adds to it), "
        f"{sum(commands.count.values()) / args.cycles / n:.1f} commands/host"
    )
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        stats = profiler.stats()
        stats.stream = text  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(args.top)
        print(f"top {args.top} by {order}:")
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[-6000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
