"""Command line: argument parsing and the one error boundary.

Each subcommand lives in ``reconciler/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args) -> int``. This module turns exceptions into exit codes:
0 success, 1 a failure the user can act on, 2 usage, 3 unexpected (with a
log path). Errors the user caused never print a traceback.
"""

from __future__ import annotations

import argparse
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in SUMMARIES), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported (all when ``argv`` is None)."""
    parser = _Parser(prog="reconciler", description="GitOps for FreeBSD build sets.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    chosen = _chosen(argv) if argv is not None else None
    for name in COMMANDS:
        if argv is None or name == chosen:
            module = importlib.import_module(f"reconciler.commands.{name}")
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=SUMMARIES[name])
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        args = build_parser(words).parse_args(words)
        logging.basicConfig(
            level=logging.DEBUG
            if args.verbose > 1
            else logging.INFO
            if args.verbose
            else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        return int(args.func(args))
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"reconciler: {exc}", file=sys.stderr)
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
