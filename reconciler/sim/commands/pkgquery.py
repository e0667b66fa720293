"""``pkg query``, ``rquery`` and ``info`` of the simulated pkg(8): src/query.c, rquery.c, info.c.

Query format (pkg-query(8)): normal keys ``%n %v %o %p %m %c %e %w %a %k %R
%q %t %sb %?d %?r %#d %#r %#O %#A``, and at most one kind of multiline key,
which prints one line per item: ``%dn %do %dv`` (dependencies), ``%rn %ro
%rv`` (reverse dependencies), ``%Ok %Ov`` (options), ``%At %Av``
(annotations), ``%Fp`` (files). Escapes ``\\t \\n \\\\``. Without a pattern
(or with ``-a``) every package matches; with patterns, nothing printed is
exit 1. No database: "No packages installed" on stderr, exit 0.

``rquery`` (src/rquery.c, options ``aCgiIxe:r:U``) prints the same keys for
the repositories' packages: with one argument (the format) every package,
with patterns the matching ones (``-a`` and patterns together is usage).
``-U`` skips the catalogue update; the simulator has no local catalogue
copy and always reads the repository itself, which is what an update would
fetch (the reconciler's repositories never change under one url).
"""

from __future__ import annotations

import getopt
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from reconciler.sim import pkgdb
from reconciler.sim.pkgdb import Installed

_MULTI = {"d", "r", "O", "A", "F"}


def _normal(pkg: Installed, key: str, rdeps: list[Installed]) -> str:
    simple: dict[str, Callable[[], str]] = {
        "n": lambda: pkg.name,
        "v": lambda: pkg.version,
        "o": lambda: pkg.origin,
        "p": lambda: pkg.prefix,
        "c": lambda: pkg.comment,
        "a": lambda: str(int(pkg.automatic)),
        "k": lambda: "0",
        "R": lambda: pkg.repository,
        "q": lambda: "FreeBSD:14:amd64",
        "m": lambda: "",
        "e": lambda: "",
        "w": lambda: "",
        "t": lambda: "0",
    }
    return simple[key]() if key in simple else ""


def _items(pkg: Installed, kind: str, rdeps: list[Installed]) -> list[dict[str, str]]:
    if kind == "d":
        return [{"n": n, "o": o, "v": v} for n, o, v in pkg.deps]
    if kind == "r":
        return [{"n": r.name, "o": r.origin, "v": r.version} for r in rdeps]
    if kind == "O":
        return [{"k": k, "v": v} for k, v in pkg.options.items()]
    if kind == "A":
        return [{"t": k, "v": v} for k, v in pkg.annotations.items()]
    return [{"p": f} for f in pkg.files]


def _format(fmt: str, pkg: Installed, rdeps: list[Installed]) -> list[str]:
    multi = None
    pieces: list[tuple[str, str]] = []  # ("text", s) | ("key", k) | ("multi", kind+key)
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt):
            pieces.append(("text", {"t": "\t", "n": "\n", "\\": "\\"}.get(fmt[i + 1], "")))
            i += 2
            continue
        if c == "%" and i + 1 < len(fmt):
            k = fmt[i + 1]
            if k in ("?", "#") and i + 2 < len(fmt):
                kind = fmt[i + 2]
                items = _items(pkg, kind, rdeps)
                pieces.append(("text", str(int(bool(items))) if k == "?" else str(len(items))))
                i += 3
                continue
            if k in _MULTI and i + 2 < len(fmt):
                multi = k
                pieces.append(("multi", fmt[i + 2]))
                i += 3
                continue
            if k == "s" and i + 2 < len(fmt):
                pieces.append(("text", str(pkg.flatsize)))
                i += 3
                continue
            pieces.append(("text", _normal(pkg, k, rdeps)))
            i += 2
            continue
        pieces.append(("text", c))
        i += 1
    rows = _items(pkg, multi, rdeps) if multi else [{}]
    return ["".join(v if t == "text" else row.get(v, "") for t, v in pieces) for row in rows]


def query(conn: sqlite3.Connection | None, args: list[str]) -> int:
    opts, rest = getopt.gnu_getopt(args, "aCe:F:gix")
    flags = dict(opts)
    if not rest:
        print("Usage: pkg query <query-format> <pkg-name>", file=sys.stderr)
        return 1
    fmt, patterns = rest[0], rest[1:]
    if conn is None:
        print("pkg: No packages installed", file=sys.stderr)
        return 0
    installed = pkgdb.all_installed(conn)
    every = "-a" in flags or not patterns
    printed = 0
    for pkg in installed:
        if not every and not any(pkgdb.matches(pkg, p) for p in patterns):
            continue
        rdeps = [p for p in installed if any(d[0] == pkg.name for d in p.deps)]
        for line in _format(fmt, pkg, rdeps):
            print(line)
            printed += 1
    return 0 if every or printed else 1


def _offered(entry: dict[str, Any]) -> Installed:
    """A catalogue entry as the formatter sees a package."""
    deps = entry.get("deps") or {}
    return Installed(
        id=0,
        name=entry["name"],
        origin=entry["origin"],
        version=entry["version"],
        comment=entry.get("comment", ""),
        automatic=False,
        prefix=entry.get("prefix", "/usr/local"),
        repository=str(entry.get("_repo", "")),
        annotations=dict(entry.get("annotations") or {}),
        options=dict(entry.get("options") or {}),
        deps=[(n, d.get("origin", ""), d.get("version", "")) for n, d in sorted(deps.items())],
        files=[],
        flatsize=int(entry.get("flatsize", 0)),
    )


def rquery(catalogue: Callable[[str | None], list[dict[str, Any]] | None], args: list[str]) -> int:
    """``pkg rquery [-aU] [-r NAME] FORMAT [PATTERN...]``; ``catalogue(repo)``: Pkg.update."""
    opts, rest = getopt.gnu_getopt(args, "+aCgiIxe:r:U")
    flags = dict(opts)
    if not rest or ("-a" in flags and len(rest) > 1):
        print("Usage: pkg rquery [-r reponame] [-I|<query-format>] <pkg-name>", file=sys.stderr)
        return 1
    fmt, patterns = rest[0], rest[1:]
    entries = catalogue(flags.get("-r"))
    if entries is None:
        return 1
    printed = 0
    for entry in entries:
        if patterns and not any(pkgdb.matches(entry, p) for p in patterns):
            continue
        for line in _format(fmt, _offered(entry), []):
            print(line)
            printed += 1
    return 0 if not patterns or printed else 1


def info(conn: sqlite3.Connection | None, args: list[str]) -> int:
    opts, patterns = getopt.gnu_getopt(args, "aEoq")
    flags = dict(opts)
    installed = pkgdb.all_installed(conn) if conn is not None else []
    chosen = [p for p in installed if not patterns or any(pkgdb.matches(p, x) for x in patterns)]
    if patterns and not chosen:
        if "-E" not in flags and "-q" not in flags:
            print(f"pkg: No package(s) matching {patterns[0]}", file=sys.stderr)
        return 1
    for pkg in chosen:
        label = f"{pkg.name}-{pkg.version}"
        if "-q" in flags and "-E" in flags:
            continue
        if "-E" in flags or "-q" in flags:
            print(label)
        elif "-o" in flags:
            print(f"{label:<30} {pkg.origin}")
        else:
            print(f"{label:<30} {pkg.comment}")
    return 0
