"""What the simulated make(1) reads besides its command line: knobs and config(8) includes.

- Variables: ``VAR=value`` and ``-DVAR`` on the command line, then
  /etc/make.conf, then the environment (make(1) imports it); src.conf(5)
  knobs (``WITH_X``/``WITHOUT_X``) from /etc/src.conf (``SRCCONF``) and the
  same places. share/mk/src.opts.mk turns them into ``MK_X``: CLEAN and
  REPRODUCIBLE_BUILD default to no (WITH_ to turn on), LIB32 to yes on amd64.
- config(8) includes (``usr.sbin/config/lang.l``, ``include()``): a name is
  opened relative to ``sys/<arch>/conf``, then, unless it starts with ``.``
  or ``/``, as ``../../conf/<name>``.
- installworld's CHECK_UIDS/CHECK_GIDS (Makefile.inc1): ``id -u`` and ``find /
  -prune -group`` ask the RUNNING system, whatever DESTDIR is. FreeBSD checks
  a fixed list; the simulator takes every user and group of the new tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

_INCLUDE = re.compile(r"^\s*include\s+\"?([^\s\"#;]+)\"?")
DEFAULT_YES = ("LIB32",)  # the __DEFAULT_YES_OPTIONS the simulator cares about (amd64)


def make_conf_path(variables: Mapping[str, str] | None = None) -> Path:
    """share/mk/sys.mk: ``__MAKE_CONF?=/etc/make.conf`` (the command line or environment wins)."""
    given = (variables or {}).get("__MAKE_CONF") or os.environ.get("__MAKE_CONF")
    return Path(given or "/etc/make.conf")


def src_conf_path(variables: Mapping[str, str] | None = None) -> Path:
    """share/mk/src.sys.env.mk: ``SRCCONF?= /etc/src.conf`` (command line or environment wins)."""
    given = (variables or {}).get("SRCCONF") or os.environ.get("SRCCONF")
    return Path(given or "/etc/src.conf")


def conf_var(path: Path, name: str) -> str | None:
    """The value make(1) would give ``name`` from a make.conf-style file (``=``, ``?=``, ``+=``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    value: str | None = None
    for line in text.splitlines():
        m = re.match(rf"^\s*{re.escape(name)}\s*([?+:]?=)\s*(.*?)\s*(#.*)?$", line)
        if m:
            op, val = m.group(1), m.group(2).strip('"')
            if op == "+=" and value:
                value = f"{value} {val}"
            elif op != "?=" or value is None:
                value = val
    return value


def defined(name: str, variables: Mapping[str, str]) -> bool:
    """``.if defined(name)``: the command line, make.conf, src.conf or the environment."""
    if name in variables or name in os.environ:
        return True
    paths = (make_conf_path(variables), src_conf_path(variables))
    return any(conf_var(p, name) is not None for p in paths)


def mk(option: str, variables: Mapping[str, str]) -> bool:
    """src.opts.mk's ``MK_<option> == yes``."""
    if option in DEFAULT_YES:
        return not defined(f"WITHOUT_{option}", variables)
    return defined(f"WITH_{option}", variables) and not defined(f"WITHOUT_{option}", variables)


def includes(conf: Path) -> Iterator[tuple[int, str]]:
    """(line, name) of each ``include`` of a kernel config file."""
    for number, line in enumerate(conf.read_text(encoding="utf-8").splitlines(), start=1):
        match = _INCLUDE.match(line.split("#", 1)[0])
        if match:
            yield number, match.group(1)


def open_include(confdir: Path, name: str) -> Path | None:
    """The file config(8), run in ``confdir``, opens for ``include name``."""
    first = Path(name) if name.startswith("/") else confdir / name
    if first.is_file():
        return first
    if not name.startswith((".", "/")):
        second = confdir / "../../conf" / name
        if second.is_file():
            return second
    return None


def missing_include(confdir: Path, conf: Path, depth: int = 0) -> tuple[Path, int] | None:
    """The (file, line) of the first include config(8) cannot open, following includes."""
    if depth > 16:
        return None
    for number, name in includes(conf):
        found = open_include(confdir, name)
        if found is None:
            return conf, number
        deeper = missing_include(confdir, found, depth + 1)
        if deeper is not None:
            return deeper
    return None


def names(path: Path) -> list[str]:
    """The first field of each line of a master.passwd or group file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [line.split(":", 1)[0] for line in text.splitlines() if line and line[0] != "#"]


def missing_account(new_etc: Path, running_etc: Path) -> str | None:
    """``<name> user`` or ``<name> group`` of the new tree the running system lacks."""
    for kind, name in (("user", "master.passwd"), ("group", "group")):
        have = set(names(running_etc / name))
        for wanted in names(new_etc / name):
            if wanted not in have:
                return f"{wanted} {kind}"
    return None
