"""A simulated host's state, in JSON files under its directory.

``state.json`` (written by the supervisor and by bectl/make/shutdown)::

    power            "on" | "off" | "booting" | "hung" (reboot-hangs, kernel-hang: down
                     until a power cycle) | "panic" (kernel-panic of a permanently
                     activated kernel) | "failed" (its sshd could not start)
    booted_be        the BE the host runs now ("" on a UFS host)
    active_be        the BE marked R (boots next unless a one-shot is set)
    oneshot_be       the BE marked T (next boot only), or null
    bes              {name: {"created": "%Y-%m-%d %H:%M", "mounted": path or null}}
    running_kernel   the kernel file (key=value, see kernel.py) the host booted, as a dict
    last_good_kernel the running kernel of the last boot that did not panic
    bootfile         kern.bootfile
    ns_pid           this machine's pid of the host's namespace init (for sim down checks)
    booted_at        time.time() of the current boot; boot_services: rc.conf knobs then
    ufs, obj_in_be   layout flags from ``sim up``

``faults.json`` is ``{kind: value}``; ``counters.json`` is ``{event: count}``.
Every read-modify-write holds an flock on the host's ``lock`` file, so the
supervisor and commands inside the host never lose each other's updates.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FAULT_KINDS = (
    "build-fails",
    "install-fails",
    "reboot-hangs",
    "kernel-panic",
    "kernel-hang",
    "health-fails",
    "connection-drop",
    "etcupdate-conflict",
    "slow",
    "disk-full",
    "port-build-fails",  # value: the origin (or package name) whose build fails
    "pkg-install-fails",  # value: the package (name or origin) whose extraction fails
    "net-broken-after-boot",
    "sshd-config-broken",
)


@contextlib.contextmanager
def locked(host_dir: Path) -> Iterator[None]:
    with open(host_dir / "lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    # Write then rename, so a reader never sees half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load(host_dir: Path, name: str = "state") -> dict[str, Any]:
    return read_json(host_dir / f"{name}.json")


@contextlib.contextmanager
def update(host_dir: Path, name: str = "state") -> Iterator[dict[str, Any]]:
    """Yield the file's dict under the lock; it is written back when the block ends."""
    with locked(host_dir):
        data = read_json(host_dir / f"{name}.json")
        yield data
        write_json(host_dir / f"{name}.json", data)


def count(host_dir: Path, event: str) -> None:
    with update(host_dir, "counters") as counters:
        counters[event] = int(counters.get(event, 0)) + 1


def fault(host_dir: Path, kind: str) -> Any:
    """The fault's value (True when set without one), or None."""
    return load(host_dir, "faults").get(kind)


def take_fault(host_dir: Path, kind: str) -> Any:
    """Read and clear a one-time fault."""
    with update(host_dir, "faults") as faults:
        return faults.pop(kind, None)


def slow_factor(host_dir: Path) -> float:
    """How much slower than configured this host runs (the ``slow`` fault; 3 when set bare)."""
    value = fault(host_dir, "slow")
    if value is None:
        return 1.0
    if value is True:
        return 3.0
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 3.0
