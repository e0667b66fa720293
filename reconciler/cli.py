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
from reconciler.errors import (
    ConfigInvalid,
    ReconcilerError,
    TransportError,
    UsageError,
    UserError,
)

COMMANDS = ("init", "validate", "plan", "status", "apply", "history", "run", "sim", "demo")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reconciler", description="GitOps for FreeBSD build sets.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"reconciler.commands.{name}")
        module.register(subparsers)
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
        args = build_parser().parse_args(argv)
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
