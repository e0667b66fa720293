"""Loopback subnets for simulated fleets that must not collide.

``reserve_subnet()`` returns ``127.0.N`` whose lease (an flock on
``/tmp/reconciler-sim-subnets/N.lock``) this process holds until it exits,
so concurrent test runs, benchmarks and demos each get their own addresses.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import TextIO

LOCK_DIR = Path("/tmp/reconciler-sim-subnets")
_held: dict[str, TextIO] = {}


def reserve_subnet(first: int = 20, last: int = 249) -> str:
    """A free ``127.0.N`` (first <= N <= last), reserved for this process's lifetime."""
    LOCK_DIR.mkdir(exist_ok=True)
    for n in range(first, last + 1):
        subnet = f"127.0.{n}"
        if subnet in _held:
            continue
        handle = open(LOCK_DIR / f"{n}.lock", "a")  # noqa: SIM115 - kept open as the lease
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held[subnet] = handle
        return subnet
    raise RuntimeError(f"no free loopback subnet among 127.0.{first}..{last}")
