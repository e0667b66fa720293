"""`reconciler history` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
from typing import Any

from reconciler.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("history", help="(not yet available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("'history' is not available yet")
