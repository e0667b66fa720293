"""Space on a simulated host's disk: what df(1) and zfs(8) report.

A ZFS host has one pool, ``zroot``, of :data:`DISK_KB`: its datasets are
``zroot/ROOT/<BE>`` (one per boot environment: its upper directories plus
:data:`BASE_BE_KB` for the base system a clone shares with its origin, as
bectl's Space column counts it), ``zroot/usr/src`` and ``zroot/usr/obj``
(their directories under ``datasets/``; /usr/obj counts into the booted BE
on an ``--obj-in-be`` host, where it lives there). Every dataset of a pool
sees the same free space. A UFS host has one file system on ``/dev/ada0p2``
holding all of it, with newfs(8)'s default 8 % minfree reserved for root
(df's Avail leaves it out). Sizes are what du(1) counts: allocated blocks.

The ``disk-full`` fault caps the free space at its value in KiB (0 when set
bare): df and zfs report it, and the planner sees a full pool. Writes still
succeed: only the numbers are simulated, not ENOSPC.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.sim import state
from reconciler.sim.layout import BE_DIRS, FleetLayout

DISK_KB = 100 * 1024 * 1024  # a 100 GiB disk (or pool)
BASE_BE_KB = 300 * 1024  # the base system in a boot environment (bectl list: ~300M)
MINFREE = 0.08  # newfs(8) -m default


def tree_kb(path: Path) -> int:
    """KiB allocated below ``path``, as ``du -sk`` counts them (each inode once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".work"]  # overlay work dirs are not data
        for name in (*files, *dirs):
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total // 1024


def _be_kb(layout: FleetLayout, host: str, be: str) -> int:
    return sum(tree_kb(layout.be(host, be) / d) for d in BE_DIRS)


def _cap(host_dir: Path) -> int | None:
    value = state.fault(host_dir, "disk-full")
    if value is None:
        return None
    if value is True:
        return 0
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


class Usage:
    """One host's file systems (datasets, or the UFS device) and the free space they share."""

    def __init__(self, layout: FleetLayout, host: str, st: dict[str, Any]) -> None:
        self.ufs = bool(st.get("ufs"))
        booted = st.get("booted_be") or "default"
        obj_in_be = bool(st.get("obj_in_be"))
        src_kb = tree_kb(layout.dataset(host, "usr-src"))
        obj_kb = tree_kb(layout.dataset(host, "usr-obj")) if not obj_in_be else 0
        #: name -> (mountpoint property, used KiB, mounted)
        self.datasets: dict[str, tuple[str, int, bool]] = {}
        if self.ufs:
            used = _be_kb(layout, host, booted) + BASE_BE_KB + src_kb + obj_kb
            self.datasets["/dev/ada0p2"] = ("/", used, True)
            size = int(DISK_KB * (1 - MINFREE))
        else:
            # usr.sbin/bsdinstall/scripts/zfsboot: zroot/ROOT and zroot/usr are
            # canmount=off containers; every BE has mountpoint=/ and only the
            # booted one is mounted.
            self.datasets["zroot"] = ("/zroot", 96, True)
            self.datasets["zroot/ROOT"] = ("none", 96, False)
            for be in sorted(st.get("bes", {})):
                used = _be_kb(layout, host, be) + BASE_BE_KB
                self.datasets[f"zroot/ROOT/{be}"] = ("/", used, be == booted)
            self.datasets["zroot/usr"] = ("/usr", 96, False)
            self.datasets["zroot/usr/src"] = ("/usr/src", src_kb, True)
            if not obj_in_be:
                self.datasets["zroot/usr/obj"] = ("/usr/obj", obj_kb, True)
            size = DISK_KB
        used_total = sum(used for _, used, _ in self.datasets.values())
        self.avail_kb = max(size - used_total, 0)
        cap = _cap(layout.host(host))
        if cap is not None:
            self.avail_kb = min(self.avail_kb, cap)

    def containing(self, path: str) -> str:
        """The mounted file system (dataset or device) that holds ``path``."""
        best, best_len = "", -1
        for name, (mountpoint, _, mounted) in self.datasets.items():
            if not mounted:
                continue
            inside = path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")
            if inside and len(mountpoint) > best_len:
                best, best_len = name, len(mountpoint)
        return best

    def used_kb(self, name: str) -> int:
        return self.datasets[name][1]

    def total_kb(self, name: str) -> int:
        """df's size: a UFS file system's whole size (minfree in it), a dataset's used + avail."""
        return DISK_KB if self.ufs else self.used_kb(name) + self.avail_kb

    def mountpoint(self, name: str) -> str:
        return self.datasets[name][0]
