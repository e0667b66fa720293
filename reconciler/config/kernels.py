"""Just enough of config(8)'s kernel configuration syntax to check and fingerprint ``kernels/``.

Two facts matter to the reconciler:

* ``ident``: after install the reconciler verifies ``uname -i`` equals the
  host's KERNCONF, so a config's effective ident (the last ``ident`` line, where
  an ``include`` of a stock config such as GENERIC brings that config's own
  ident) must equal its file name, or every host using it would fail
  verification after a perfectly good install;
* ``include``: a custom config may include another file of ``kernels/``, so the
  build id covers every custom file a listed kernel includes, transitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.config.model import STOCK_KERNCONFS

_DIRECTIVE = re.compile(r"^\s*(ident|include)\s+\"?([^\s\"#;]+)\"?")
MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class Directive:
    file: str  # the kernels/ ident whose file holds the line
    line: int
    word: str  # "ident" or "include"
    value: str


def directives(ident: str, text: str) -> list[Directive]:
    """``ident`` and ``include`` lines of one config file, comments ignored."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(line.split("#", 1)[0])
        if match:
            found.append(Directive(ident, number, match.group(1), match.group(2)))
    return found


def expand(ident: str, kernels: Mapping[str, str]) -> list[Directive]:
    """The directives of ``kernels[ident]`` with custom includes expanded in place.

    An include of a stock config contributes that config's ident; an include of
    a file that is neither custom nor stock is left as it is (config(8) reports it).
    """
    result: list[Directive] = []

    def walk(name: str, depth: int, seen: tuple[str, ...]) -> None:
        for directive in directives(name, kernels[name]):
            result.append(directive)
            target = directive.value.rsplit("/", 1)[-1]
            if directive.word != "include":
                continue
            if target in kernels and target not in seen and depth < MAX_INCLUDE_DEPTH:
                walk(target, depth + 1, (*seen, target))
            elif target in STOCK_KERNCONFS:
                result.append(Directive(target, 0, "ident", target))

    walk(ident, 0, (ident,))
    return result


def effective_ident(ident: str, kernels: Mapping[str, str]) -> Directive | None:
    """The ``ident`` line that wins for ``kernels[ident]`` (the last one), or None."""
    idents = [d for d in expand(ident, kernels) if d.word == "ident"]
    return idents[-1] if idents else None


def closure(ident: str, kernels: Mapping[str, str]) -> list[str]:
    """``ident`` and every custom config it includes, transitively, each once, in order."""
    names = [ident] if ident in kernels else []
    for directive in expand(ident, kernels) if ident in kernels else []:
        target = directive.value.rsplit("/", 1)[-1]
        if directive.word == "include" and target in kernels and target not in names:
            names.append(target)
    return names
