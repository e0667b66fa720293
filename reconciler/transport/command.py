"""Building remote commands safely.

A remote command is an argument list. It becomes a string only here, with
every element quoted by :func:`shlex.quote`, so a value can never turn into
shell syntax (pyinfra's issue #1646 is the cautionary tale). Where shell
syntax is genuinely needed, :func:`sh` makes it explicit: a fixed script, and
the values as positional parameters ``$1``, ``$2``, ... that the script
references in double quotes.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def quote(argv: Sequence[str]) -> str:
    """Join an argument list into one shell word per element."""
    if isinstance(argv, str):
        # A bare string would be quoted character by character: always a bug.
        raise TypeError("quote() wants a list of arguments, not a string")
    if not argv:
        raise ValueError("empty command")
    return " ".join(shlex.quote(str(arg)) for arg in argv)


def sh(script: str, *args: str) -> list[str]:
    """``sh -c SCRIPT sh ARGS...``: the script sees the values as ``$1``... only."""
    return ["sh", "-c", script, "sh", *args]
