"""`reconciler run` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
from typing import Any

from reconciler.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="(not yet available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("'run' is not available yet")
