"""Rules over the config repo's text files: what a host would refuse later.

Pure, like :mod:`reconciler.config.rules` (which calls these). Each rule
stands for a failure that would otherwise surface only on a host, after the
config was accepted:

* a kernel config ``include`` that names no file: config(8) (``include()`` in
  ``usr.sbin/config/lang.l``) opens the name relative to ``sys/<arch>/conf``,
  then, for a bare name, ``../../conf/<name>``; anything else stops the kernel
  build with "cannot open included file";
* a make.conf/src.conf whose last line ends in ``\\``: the reconciler appends
  its own lines (``KERNCONF=...``) after the file, so make(1) would read the
  first of them as part of that line;
* an ``.if``/``.for`` never closed (or an ``.endif`` without ``.if``): the
  appended lines would sit inside the conditional, or make(1) stops;
* a git URL whose host (or ``user@host``) starts with ``-``: git hands it to
  ssh as an argument, where it reads as an option (git refuses such hosts
  since 2.14.1; older clients do not).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping

from reconciler.config import kernels as kconf
from reconciler.config.model import STOCK_KERNCONFS
from reconciler.errors import Problem

#: Files of ``sys/<arch>/conf`` that ship with FreeBSD besides the configs a
#: host may name (config(8) includes resolve there first).
STOCK_ARCH_FILES = STOCK_KERNCONFS | {
    "DEFAULTS",
    "NOTES",
    "GENERIC-KASAN",
    "GENERIC-KCSAN",
    "GENERIC-KMSAN",
    "FIRECRACKER",
}
#: Files of ``sys/conf`` a kernel config may include (``include "std.nodebug"``).
STOCK_CONF_FILES = frozenset({"std.debug", "std.nodebug", "NOTES"})

_DIRECTIVE = re.compile(r"^\s*\.\s*(if|ifdef|ifndef|ifmake|ifnmake|for|endif|endfor)\b")


def resolve_include(value: str, custom: Mapping[str, str]) -> bool:
    """Whether config(8), run in ``sys/<arch>/conf``, finds the file an include names."""
    if value.startswith("/"):
        return False  # a file of the build host, outside the source tree: not checkable
    path = posixpath.normpath(posixpath.join("sys/ARCH/conf", value))
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "sys" and parts[2] == "conf":
        name = parts[3]
        if name in custom or name in STOCK_ARCH_FILES:
            return True
        # config(8) retries a bare name as ../../conf/<name>
        return "/" not in value and name in STOCK_CONF_FILES
    return len(parts) == 3 and parts[:2] == ["sys", "conf"] and parts[2] in STOCK_CONF_FILES


def kernel_includes(kernels: Mapping[str, str]) -> Iterator[Problem]:
    """``include`` lines of kernels/* that config(8) could not open."""
    for ident in sorted(kernels):
        for directive in kconf.directives(ident, kernels[ident]):
            if directive.word != "include" or resolve_include(directive.value, kernels):
                continue
            stock = ", ".join(sorted(STOCK_ARCH_FILES))
            yield Problem(
                f"kernels/{ident}",
                directive.line,
                1,
                f"include {directive.value!r} names no file in kernels/ or in the stock "
                "kernel configs: config(8) would stop the kernel build "
                "('cannot open included file')",
                f"add kernels/{directive.value.rsplit('/', 1)[-1]} or include a stock "
                f"config ({stock}; from sys/conf: {', '.join(sorted(STOCK_CONF_FILES))})",
            )


def _continues(line: str) -> bool:
    """A make(1) line continues when it ends in an odd number of backslashes."""
    stripped = line.rstrip("\r\n")
    return (len(stripped) - len(stripped.rstrip("\\"))) % 2 == 1


def makefile_text(path: str, text: str) -> Iterator[Problem]:
    """A make.conf/src.conf that would swallow or hide what the reconciler appends."""
    lines = text.splitlines()
    open_blocks: list[tuple[str, int, int]] = []  # (keyword, line, column)
    continued = False
    for number, line in enumerate(lines, start=1):
        was_continued, continued = continued, _continues(line)
        if was_continued:
            continue
        match = _DIRECTIVE.match(line)
        if match is None:
            continue
        word, column = match.group(1), match.start(1) + 1
        if word in ("endif", "endfor"):
            opener = "if" if word == "endif" else "for"
            if open_blocks and open_blocks[-1][0] == opener:
                open_blocks.pop()
            else:
                yield Problem(
                    path,
                    number,
                    column,
                    f".{word} without a matching .{opener}: make(1) stops reading the file here",
                    f"remove this .{word} or add the .{opener} it closes",
                )
        else:
            open_blocks.append(("for" if word == "for" else "if", number, column))
    for opener, number, column in open_blocks:
        closer = "endfor" if opener == "for" else "endif"
        yield Problem(
            path,
            number,
            column,
            f"this .{opener} is never closed with .{closer}: the lines the reconciler adds "
            "after the file (KERNCONF=..., the ports settings) would be inside it",
            f"add .{closer} at the end of the block",
        )
    if lines and _continues(lines[-1]):
        yield Problem(
            path,
            len(lines),
            len(lines[-1].rstrip("\r\n")),
            "the last line ends with '\\': make(1) would join the first line the reconciler "
            "adds after the file (KERNCONF=...) to it",
            "remove the trailing backslash",
        )


def git_url_host(url: str) -> str | None:
    """The part of a git URL's authority that an ssh client would get as an argument."""
    if "://" not in url:
        return None
    authority = url.split("://", 1)[1].split("/", 1)[0]
    user, _, host = authority.rpartition("@")
    for part in (user, host):
        if part.startswith("-"):
            return part
    return None
