"""Loopback subnets for simulated fleets that must not collide.

``reserve_subnet()`` returns ``127.0.N`` whose lease (an flock on
``/tmp/reconciler-sim-subnets/N.lock``) this process holds until it exits,
so concurrent test runs, benchmarks and demos each get their own addresses.
``reserve_subnet(count=k)`` leases ``k`` consecutive /24s and returns the
first: a fleet of more than 150 anonymous hosts spreads over several
(:func:`anonymous_addresses`).
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import TextIO

LOCK_DIR = Path("/tmp/reconciler-sim-subnets")
_held: dict[str, TextIO] = {}

#: An anonymous fleet this small keeps its historical addresses: SUBNET.101 to .250.
SMALL_FLEET = 150
#: Hosts per /24 in a larger one: .1 to .250 of SUBNET, then of the /24s after it.
PER_SUBNET = 250


def subnets_needed(hosts: int) -> int:
    """How many consecutive /24s an anonymous fleet of ``hosts`` occupies."""
    return 1 if hosts <= SMALL_FLEET else -(-hosts // PER_SUBNET)


def anonymous_addresses(subnet: str, hosts: int) -> list[str]:
    """Addresses of host1..hostN: ``SUBNET.101`` on up to 150 hosts, else 250 per /24."""
    prefix, _, third = subnet.rpartition(".")
    base = int(third)
    if base + subnets_needed(hosts) - 1 > 255:
        raise ValueError(f"{hosts} hosts need {subnets_needed(hosts)} /24s from {subnet} on")
    if hosts <= SMALL_FLEET:
        return [f"{subnet}.{100 + i}" for i in range(1, hosts + 1)]
    return [f"{prefix}.{base + i // PER_SUBNET}.{1 + i % PER_SUBNET}" for i in range(hosts)]


def _lock(n: int) -> TextIO | None:
    handle = open(LOCK_DIR / f"{n}.lock", "a")  # noqa: SIM115 - kept open as the lease
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def reserve_subnet(first: int = 20, last: int = 249, *, count: int = 1) -> str:
    """A free ``127.0.N`` (first <= N <= last), reserved for this process's lifetime.

    With ``count``, the ``count`` /24s from ``127.0.N`` on are all reserved.
    """
    LOCK_DIR.mkdir(exist_ok=True)
    for n in range(first, last - count + 2):
        wanted = [f"127.0.{n + k}" for k in range(count)]
        if any(subnet in _held for subnet in wanted):
            continue
        handles: list[TextIO] = []
        for k in range(count):
            handle = _lock(n + k)
            if handle is None:
                break
            handles.append(handle)
        if len(handles) == count:
            _held.update(zip(wanted, handles, strict=True))
            return wanted[0]
        for handle in handles:
            handle.close()  # closing the file releases its flock
    raise RuntimeError(f"no {count} free loopback subnet(s) among 127.0.{first}..{last}")
