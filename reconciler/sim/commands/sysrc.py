"""sysrc(8): usr.sbin/sysrc/sysrc, for /etc/rc.conf (or ``-f FILE``).

``sysrc NAME`` prints ``NAME: value`` (``-n``: the value), falling back to
/etc/defaults/rc.conf; an unknown name is ``sysrc: unknown variable 'NAME'``
and exit 1. ``sysrc NAME=VALUE`` rewrites or appends ``NAME="VALUE"`` and
prints ``NAME: old -> new``. ``-x NAME`` removes it.
"""

from __future__ import annotations

import getopt
import re
import sys
from pathlib import Path


def read_vars(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        m = re.match(r'^\s*([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|\'([^\']*)\'|(\S*))', line)
        if m:
            values[m.group(1)] = next((g for g in m.groups()[1:] if g is not None), "")
    return values


def rc_value(name: str, root: Path = Path("/")) -> str | None:
    """The effective rc.conf value of ``name`` (rc.conf over defaults)."""
    local = read_vars(root / "etc/rc.conf")
    if name in local:
        return local[name]
    return read_vars(root / "etc/defaults/rc.conf").get(name)


def _set(path: Path, name: str, value: str) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    pattern = re.compile(rf"^\s*{re.escape(name)}=")
    new = f'{name}="{value}"'
    for i, line in enumerate(lines):
        if pattern.match(line):
            lines[i] = new
            break
    else:
        lines.append(new)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(host: object, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "f:nxqv")
    except getopt.GetoptError as exc:
        print(f"sysrc: {exc.msg}", file=sys.stderr)
        return 1
    flags = dict(opts)
    path = Path(flags.get("-f", "/etc/rc.conf"))
    defaults = read_vars(Path("/etc/defaults/rc.conf")) if "-f" not in flags else {}
    status = 0
    for arg in rest:
        name, eq, value = arg.partition("=")
        current = read_vars(path)
        old = current.get(name, defaults.get(name))
        if "-x" in flags:
            if name in current:
                lines = path.read_text(encoding="utf-8").splitlines()
                path.write_text(
                    "".join(f"{x}\n" for x in lines if not re.match(rf"^\s*{re.escape(name)}=", x))
                )
            continue
        if eq:
            _set(path, name, value)
            if "-q" not in flags:
                print(f"{name}: {old if old is not None else ''} -> {value}")
            continue
        if old is None:
            print(f"sysrc: unknown variable '{name}'", file=sys.stderr)
            status = 1
        elif "-n" in flags:
            print(old)
        else:
            print(f"{name}: {old}")
    return status
