"""rcorder(8): sbin/rcorder/rcorder.c, rcorder.8.

``rcorder [-s keyword ...] [-k keyword ...] file ...`` reads the ``# PROVIDE:``,
``# REQUIRE:``, ``# BEFORE:`` and ``# KEYWORD:`` lines of each file and
prints the files in an order where every file comes after those that
provide what it requires (and before those it names in BEFORE). ``-s``
skips files with that keyword, ``-k`` keeps only files with one. A
requirement nobody provides is a warning on stderr (``rcorder: requirement
`X' in file `F' has no providers.``), not an error; so is a cycle, whose
files are still printed. Ties keep the command line's order (rcorder.c
walks the files in the order given).
"""

from __future__ import annotations

import getopt
import sys
from pathlib import Path

from reconciler.sim.commands.host import Host

_FIELDS = ("PROVIDE", "REQUIRE", "BEFORE", "KEYWORD")


def _headers(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {f: [] for f in _FIELDS}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped:
                break  # rcorder stops at the first line that is not a comment (or blank)
            continue
        body = stripped.lstrip("#").strip()
        for field in _FIELDS:
            if body.startswith(field + ":"):
                found[field] += body[len(field) + 1 :].split()
    return found


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, files = getopt.getopt(argv, "dk:ps:")
    except getopt.GetoptError:
        print("usage: rcorder [-dgp] [-k keep] [-s skip] file ...", file=sys.stderr)
        return 1
    skip = {v for o, v in opts if o == "-s"}
    keep = {v for o, v in opts if o == "-k"}
    heads: dict[str, dict[str, list[str]]] = {}
    for name in files:
        path = Path(name)
        if not path.is_file():
            print(f"rcorder: {name}: No such file or directory", file=sys.stderr)
            continue
        head = _headers(path)
        words = set(head["KEYWORD"])
        if words & skip or (keep and not words & keep):
            continue
        heads[name] = head
    providers: dict[str, list[str]] = {}
    for name, head in heads.items():
        for word in head["PROVIDE"]:
            providers.setdefault(word, []).append(name)
    after: dict[str, set[str]] = {name: set() for name in heads}
    for name, head in heads.items():
        for word in head["REQUIRE"]:
            if word not in providers:
                print(
                    f"rcorder: requirement `{word}' in file `{name}' has no providers.",
                    file=sys.stderr,
                )
            after[name].update(p for p in providers.get(word, ()) if p != name)
        for word in head["BEFORE"]:
            for other in providers.get(word, ()):
                if other != name:
                    after[other].add(name)
    printed: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            print(f"rcorder: Circular dependency on file `{name}'.", file=sys.stderr)
            return
        visiting.add(name)
        for first in sorted(after[name], key=list(heads).index):
            visit(first)
        visiting.discard(name)
        done.add(name)
        printed.append(name)

    for name in heads:
        visit(name)
    print("\n".join(printed))
    return 0
