"""df(1): bin/df/df.c (main(), prtstat(), update_maxwidths()) and getbsize(3).

``df [-k|-m|-g|-P|-b] [file ...]``: the file system holding each file, or
every mounted one. The header is ``Filesystem``, the block size as
getbsize(3) names it (``-k`` sets BLOCKSIZE=1024: ``1024-blocks``; the
default is ``512-blocks``), ``Used``, ``Avail``, ``Capacity``, ``Mounted on``;
each column is as wide as its widest value. Capacity is used / (used +
avail), ``%5.0f%%``. A missing file: ``df: FILE: No such file or directory``
and exit 1, the others still printed. Sizes come from reconciler/sim/disk.py;
a path under an NFS mount reports the server's file system, named
``server:/path``. Not simulated: -h/-H/-i/-T/-c/-, and -t/-l filters.
"""

from __future__ import annotations

import getopt
import os
import sys

from reconciler.sim import state as simstate
from reconciler.sim.commands.host import Host
from reconciler.sim.commands.mount import _load as nfs_mounts
from reconciler.sim.disk import Usage

_USAGE = (
    "usage: df [-b | -g | -H | -h | -k | -m | -P] [-acilnT] [-t type] [-,] "
    "[file | filesystem ...]"
)
Row = tuple[str, int, int, int, str]  # mntfrom, total KiB, used KiB, avail KiB, mntonname


def _local(usage: Usage, name: str, mnt: str) -> Row:
    return (name, usage.total_kb(name), usage.used_kb(name), usage.avail_kb, mnt)


def _nfs(host: Host, spec: str, mnt: str) -> Row | None:
    server_name, _, path = spec.rpartition(":")
    specs, _ = host.fleet()
    server = next((s for s in specs if server_name in (s.name, s.address)), None)
    if server is None:
        return None
    server_usage = Usage(host.layout, server.name, simstate.load(host.layout.host(server.name)))
    name = server_usage.containing(path)
    if not name:
        return None
    _, total, used, avail, _ = _local(server_usage, name, mnt)
    return (spec, total, used, avail, mnt)


def _row_for(host: Host, usage: Usage, path: str) -> Row | None:
    mounts = sorted(nfs_mounts(), key=lambda m: len(m["file"]), reverse=True)
    for m in mounts:
        if path == m["file"] or path.startswith(m["file"].rstrip("/") + "/"):
            return _nfs(host, m["spec"], m["file"])
    name = usage.containing(path)
    return _local(usage, name, usage.mountpoint(name)) if name else None


def _print(rows: list[Row], blocksize: int, header: str) -> None:
    def blocks(kib: int) -> int:
        return kib * 1024 // blocksize

    width_from = max([len("Filesystem")] + [len(r[0]) for r in rows])
    width_total = max([len(header)] + [len(str(blocks(r[1]))) for r in rows])
    width_used = max([len("Used")] + [len(str(blocks(r[2]))) for r in rows])
    width_avail = max([len("Avail")] + [len(str(blocks(r[3]))) for r in rows])
    out = [
        f"{'Filesystem':<{width_from}} {header:>{width_total}} {'Used':>{width_used}} "
        f"{'Avail':>{width_avail}} Capacity  Mounted on"
    ]
    for mntfrom, total, used, avail, mnt in rows:
        capacity = 100.0 if used + avail == 0 else used / (used + avail) * 100.0
        out.append(
            f"{mntfrom:<{width_from}} {blocks(total):>{width_total}} {blocks(used):>{width_used}} "
            f"{blocks(avail):>{width_avail}} {capacity:5.0f}%    {mnt}"
        )
    print("\n".join(out))


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "abcgHhiklmnPt:T,")
    except getopt.GetoptError:
        print(_USAGE, file=sys.stderr)
        return 64  # EX_USAGE
    blocksize, header = 512, "512-blocks"
    for opt, _ in opts:
        if opt == "-k":
            blocksize, header = 1024, "1024-blocks"
        elif opt == "-m":
            blocksize, header = 1024 * 1024, "1M-blocks"
        elif opt == "-g":
            blocksize, header = 1024 * 1024 * 1024, "1G-blocks"
        elif opt in ("-P", "-b"):
            blocksize, header = 512, "512-blocks"
        elif opt in ("-h", "-H", "-i", "-T", "-c", "-,", "-t", "-l"):
            print(f"df: {opt} is not simulated", file=sys.stderr)
            return 1
    usage = Usage(host.layout, host.name, host.state())
    rows: list[Row] = []
    status = 0
    if not rest:
        for name, (mountpoint, _, mounted) in usage.datasets.items():
            if mounted:
                rows.append(_local(usage, name, mountpoint))
        rows += [r for m in nfs_mounts() if (r := _nfs(host, m["spec"], m["file"])) is not None]
    for path in rest:
        if not os.path.exists(path):
            print(f"df: {path}: No such file or directory", file=sys.stderr)
            status = 1
            continue
        row = _row_for(host, usage, os.path.abspath(path))
        if row is None:
            print(f"df: {path}: No such file or directory", file=sys.stderr)
            status = 1
            continue
        rows.append(row)
    if rows:
        _print(rows, blocksize, header)
    return status
