"""Benchmark: `sim up` of N simulated hosts (goal: 50 hosts in under 30 s on 2 cores).

    /work/venv/bin/python bench/sim_up.py [--hosts 50]

Prints the seconds from nothing to every sshd answering, hosts per second,
one SSH round (`uname -i` on every host, 8 at a time) and `sim down` time.
Uses a loopback subnet of its own, so it runs beside tests and demos.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import tempfile
import time
from pathlib import Path

from reconciler.sim.fleet import SimFleet
from reconciler.sim.subnets import reserve_subnet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sim-up-") as tmp:
        started = time.monotonic()
        fleet = SimFleet.up(Path(tmp) / "fleet", hosts=args.hosts, subnet=reserve_subnet())
        up = time.monotonic() - started
        try:
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                results = list(pool.map(lambda h: fleet.ssh(h, "uname -i"), fleet.hosts))
            round_trip = time.monotonic() - started
            failed = [
                h for h, r in zip(fleet.hosts, results, strict=True) if r.stdout != "GENERIC\n"
            ]
        finally:
            started = time.monotonic()
            fleet.down()
            down = time.monotonic() - started
    print(f"sim up: {args.hosts} hosts in {up:.1f} s ({args.hosts / up:.1f} hosts/s)")
    print(
        f"ssh round: uname -i on {args.hosts} hosts in {round_trip:.1f} s (8 parallel)"
        + (f"; FAILED on {', '.join(failed)}" if failed else "")
    )
    print(f"sim down: {down:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
