"""`reconciler release SET BUILD`: lift the quarantine of a build that failed its test stage.

A quarantined build is not tried again by a commit that does not change it
(a README edit); releasing it is a ledger commit naming who did it, after
which the next apply (or the daemon's next poll of a new commit) tries it.
"""

from __future__ import annotations

import argparse
import getpass
import socket
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.commands.common import (
    add_repo_argument,
    add_settings_arguments,
    repo_path,
    settings_from,
)
from reconciler.config.load import load_config
from reconciler.config.repofiles import resolve_commit
from reconciler.errors import UsageError
from reconciler.ledger import Ledger
from reconciler.statusstore import StatusStore


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "release",
        help=SUMMARIES["release"],
        description="Lift the quarantine of BUILD (its id, or a prefix of 7+ hex digits) in "
        "build set SET. Exit 1 when it is not quarantined.",
    )
    parser.add_argument("buildset", metavar="SET", help="the build set")
    parser.add_argument("build", metavar="BUILD", help="the build id (a prefix will do)")
    add_repo_argument(parser)
    add_settings_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    repo = repo_path(settings)
    commit = resolve_commit(repo, "HEAD")
    config = load_config(repo, commit)
    try:
        config.buildset(args.buildset)
    except KeyError:
        known = ", ".join(bs.name for bs in config.buildsets)
        raise UsageError(f"no build set {args.buildset!r} (known: {known})") from None
    if len(args.build) < 7:
        raise UsageError("name the build with at least 7 hex digits of its id")
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    store = StatusStore(Ledger(repo, config.policy.status_branch))
    store.release(args.buildset, args.build.lower(), who, commit)
    print(f"{args.buildset}: build {args.build[:12]} released by {who}; the next apply tries it")
    return 0
