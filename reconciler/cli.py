"""Command line: argument parsing and the one error boundary.

Each subcommand lives in ``reconciler/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args) -> int``. This module turns exceptions into exit codes:
0 success, 1 a failure the user can act on, 2 usage, 3 unexpected (with a
log path). Errors the user caused never print a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from reconciler import __version__
from reconciler.commands import SUMMARIES
from reconciler.errors import (
    ConfigInvalid,
    ReconcilerError,
    TransportError,
    UsageError,
    UserError,
)

COMMANDS = tuple(SUMMARIES)


class ArgumentError(UsageError):
    """The command line does not parse; ``prog`` names the (sub)command it belongs to."""

    def __init__(self, prog: str, message: str) -> None:
        self.prog = prog
        super().__init__(message)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgumentError(self.prog, message)


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in SUMMARIES), None)


#: Options of ``reconciler`` itself that take no value (the first other word is the command).
_TOP_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet", "-vv", "-vvv", "--version", "-h"})


def _first_word(argv: Sequence[str]) -> str | None:
    """The first word that is not one of ``reconciler``'s own options: the command typed."""
    return next((word for word in argv if word not in _TOP_FLAGS and word != "--help"), None)


def listing() -> str:
    """What a bare ``reconciler`` prints: the commands, one line each."""
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: reconciler [-v | -q] COMMAND [ARGS]", "", "Commands:"]
    lines += [f"  {name.ljust(width)}  {SUMMARIES[name]}" for name in COMMANDS]
    lines += ["", "reconciler COMMAND --help shows a command's options."]
    return "\n".join(lines)


def _unknown_command(word: str) -> ArgumentError:
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else f" (commands: {', '.join(COMMANDS)})"
    return ArgumentError("reconciler", f"unknown command {word!r}{hint}")


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """-v/-q on a subcommand too (``reconciler plan -v``), counted with the top-level ones."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "-v", "--verbose", dest="sub_verbose", action="count", default=0,
        help="more detail (-v: every remote line and host message; -vv: debug log)",
    )  # fmt: skip
    group.add_argument(
        "-q", "--quiet", dest="sub_quiet", action="count", default=0,
        help="only warnings, errors and the summary",
    )  # fmt: skip


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported (all when ``argv`` is None)."""
    parser = _Parser(prog="reconciler", description="GitOps for FreeBSD build sets.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    chosen = _chosen(argv) if argv is not None else None
    for name in COMMANDS:
        if argv is None or name == chosen:
            module = importlib.import_module(f"reconciler.commands.{name}")
            module.register(subparsers)
            add_output_flags(subparsers.choices[name])
        else:
            subparsers.add_parser(name, help=SUMMARIES[name])
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; ``verbose``/``quiet`` count the flags before and after COMMAND."""
    word = _first_word(argv)
    if word is not None and not word.startswith("-") and word not in SUMMARIES:
        raise _unknown_command(word)
    args = build_parser(argv).parse_args(argv)
    args.verbose = int(args.verbose) + int(getattr(args, "sub_verbose", 0) or 0)
    args.quiet = int(args.quiet) + int(getattr(args, "sub_quiet", 0) or 0)
    if args.verbose and args.quiet:
        raise ArgumentError(f"reconciler {args.command}", "-v and -q exclude each other")
    return args


def _crash_log(exc: BaseException) -> Path:
    directory = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "reconciler"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        directory = Path(tempfile.gettempdir())
    path = directory / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    path.write_text(
        f"reconciler {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
        f"argv: {sys.argv!r}\n\n" + "".join(traceback.format_exception(exc)),
        encoding="utf-8",
    )
    return path


def _setup_logging(verbose: int, quiet: int) -> None:
    """-q: errors only; default: warnings; -v: the reconciler's info; -vv: debug, libraries too."""
    level = logging.ERROR if quiet else logging.WARNING
    if verbose:
        level = logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # paramiko logs every connection at info: noise next to the reconciler's own lines.
        logging.getLogger("paramiko").setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        if not words:
            print(listing())
            return 0
        args = parse(words)
        _setup_logging(args.verbose, args.quiet)
        return int(args.func(args))
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"reconciler: {exc}", file=sys.stderr)
        return exc.exit_code
    except ArgumentError as exc:
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        print(f"(see {exc.prog} --help)", file=sys.stderr)
        return exc.exit_code
    except (UserError, UsageError) as exc:
        # A transport error's text leaves out the host, which callers add once.
        text = exc.described if isinstance(exc, TransportError) else str(exc)
        print(f"reconciler: error: {text}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("reconciler: interrupted", file=sys.stderr)
        return 130
    except (ReconcilerError, Exception) as exc:
        path = _crash_log(exc)
        print(f"reconciler: unexpected error: {exc!r}; details in {path}", file=sys.stderr)
        return 3
