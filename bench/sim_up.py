"""Benchmark: `sim up` of N simulated hosts (goal: 50 hosts in under 30 s on 2 cores).

    .venv/bin/python bench/sim_up.py [--hosts 50]

Prints the seconds from nothing to every sshd answering, hosts per second,
memory per host (PSS of its ``unshare`` and sshd, plus its share of the
supervisor) and disk per host, one SSH round (`uname -i` on every host, 8 at
a time) and `sim down` time. Uses loopback subnets of its own (one /24 per
250 hosts above 150), so it runs beside tests and demos.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_bench import memory_per_host

from reconciler.sim.fleet import SimFleet
from reconciler.sim.subnets import reserve_subnet, subnets_needed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sim-up-") as tmp:
        subnet = reserve_subnet(count=subnets_needed(args.hosts))
        started = time.monotonic()
        fleet = SimFleet.up(Path(tmp) / "fleet", hosts=args.hosts, subnet=subnet)
        up = time.monotonic() - started
        try:
            mem, disk = memory_per_host(fleet)
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
    print(f"  memory per simulated host: {mem:.2f} MiB PSS; disk {disk:.2f} MiB")
    print(
        f"ssh round: uname -i on {args.hosts} hosts in {round_trip:.1f} s (8 parallel)"
        + (f"; FAILED on {', '.join(failed)}" if failed else "")
    )
    print(f"sim down: {down:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
