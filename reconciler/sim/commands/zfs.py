"""zfs(8), ``list`` only: cmd/zfs/zfs_main.c zfs_do_list() in sys/contrib/openzfs.

``zfs list [-Hp] [-o prop[,prop]...] [-r] [dataset|path ...]``; default
columns name, used, avail, refer, mountpoint. Arguments may be paths
(zfs_do_list sets ZFS_ITER_ARGS_CAN_BE_PATHS): libzfs zfs_path_to_zhandle()
lists the mounted dataset holding the path, or says ``'PATH': not a ZFS
filesystem`` (exit 1). ``-H``: no header, one tab between fields; ``-p``:
exact numbers (bytes); otherwise sizes are humanized like zfs_nicenum()
(``96K``, ``1.50G``) and columns padded, numbers to the right. An unknown
dataset: ``cannot open 'NAME': dataset does not exist`` (exit 1); a UFS host
has no pool: ``no datasets available`` on stderr, exit 0. Sizes come from
reconciler/sim/disk.py. Not simulated: other subcommands, -t, -d, -s/-S.
"""

from __future__ import annotations

import getopt
import os
import sys

from reconciler.sim.commands.host import Host
from reconciler.sim.disk import Usage

_PROPS = {
    "name": "NAME",
    "used": "USED",
    "avail": "AVAIL",
    "available": "AVAIL",
    "refer": "REFER",
    "referenced": "REFER",
    "mountpoint": "MOUNTPOINT",
}
_NUMERIC = {"used", "avail", "available", "refer", "referenced"}


def nicenum(value: int) -> str:
    """zfs_nicenum(): 1024-based, at most five characters (``96K``, ``1.50G``, ``115G``).

    An exact multiple of the unit prints without decimals, as zfs_nicenum_format does.
    """
    units = "BKMGTPE"
    index, scaled = 0, float(value)
    while scaled >= 1024 and index < len(units) - 1:
        scaled /= 1024
        index += 1
    if index == 0:
        return f"{value}B"
    if value % (1024**index) == 0:  # an exact multiple: no decimals
        return f"{value // 1024**index}{units[index]}"
    for precision in (2, 1, 0):
        text = f"{scaled:.{precision}f}{units[index]}"
        if len(text) <= 5:
            return text
    return f"{scaled:.0f}{units[index]}"


def _fields(usage: Usage, name: str) -> dict[str, int | str]:
    mountpoint, own, _ = usage.datasets[name]
    children = [n for n in usage.datasets if n.startswith(name + "/")]
    used = own + sum(usage.used_kb(n) for n in children)
    if name == "zroot":
        used = sum(u for _, u, _ in usage.datasets.values())
    values: dict[str, int | str] = {
        "name": name,
        "used": used * 1024,
        "avail": usage.avail_kb * 1024,
        "refer": own * 1024,
        "mountpoint": mountpoint,
    }
    values["available"], values["referenced"] = values["avail"], values["refer"]
    return values


def run(host: Host, prog: str, argv: list[str]) -> int:
    if argv[:1] != ["list"]:
        print("zfs: only 'zfs list' is simulated", file=sys.stderr)
        return 2
    try:
        opts, rest = getopt.getopt(argv[1:], "HS:d:o:prs:t:")
    except getopt.GetoptError as exc:
        print(f"invalid option '{exc.opt}'\nusage:\n\tlist [-Hp] [-r|-d max] ...", file=sys.stderr)
        return 2
    flags = dict(opts)
    props = flags.get("-o", "name,used,avail,refer,mountpoint").split(",")
    unknown = [p for p in props if p not in _PROPS]
    if unknown:
        print(f"bad property list: invalid property '{unknown[0]}'", file=sys.stderr)
        return 2
    usage = Usage(host.layout, host.name, host.state())
    if usage.ufs:
        if not rest:
            print("no datasets available", file=sys.stderr)
            return 0
        for arg in rest:
            print(
                f"'{arg}': not a ZFS filesystem"
                if arg.startswith("/")
                else f"cannot open '{arg}': dataset does not exist",
                file=sys.stderr,
            )
        return 1
    names: list[str] = []
    status = 0
    for arg in rest or list(usage.datasets):
        if arg.startswith("/"):
            if not os.path.exists(arg):
                print(f"cannot open '{arg}': No such file or directory", file=sys.stderr)
                status = 1
                continue
            name = usage.containing(os.path.abspath(arg))
        else:
            name = arg if arg in usage.datasets else ""
        if not name:
            print(f"cannot open '{arg}': dataset does not exist", file=sys.stderr)
            status = 1
            continue
        names.append(name)
        if "-r" in flags:
            names += [n for n in usage.datasets if n.startswith(name + "/")]
    rows = []
    for name in dict.fromkeys(names):
        values = _fields(usage, name)
        rows.append(
            [
                str(values[p]) if "-p" in flags or p not in _NUMERIC else nicenum(int(values[p]))
                for p in props
            ]
        )
    if "-H" in flags:
        print("\n".join("\t".join(row) for row in rows))
        return status
    header = [_PROPS[p] for p in props]
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        cells = [
            cell.rjust(w) if p in _NUMERIC and row is not header else cell.ljust(w)
            for cell, w, p in zip(row, widths, props, strict=True)
        ]
        print("  ".join(cells).rstrip())
    return status
