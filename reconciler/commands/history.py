"""`reconciler history`: the ledger (the status branch), newest first.

REPO is a local repository (bare or not); without it the settings file's
``repo`` is used (``--config FILE``), else the current directory. When that
setting is a URL, the status branch alone is fetched into a temporary bare
repository and read there, so the history of a remote config repo can be read
without a clone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.errors import LedgerError, RepoError
from reconciler.gitutil import git, run_git
from reconciler.ledger import DEFAULT_BRANCH, Entry, Ledger
from reconciler.settings import load_settings

_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/:]+:(?!//))", re.IGNORECASE)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help=SUMMARIES["history"],
        description="Show the reconciler's ledger (the status branch of the config repo).",
    )
    parser.add_argument(
        "repo", nargs="?", metavar="REPO", help="config repo (default: settings, then .)"
    )
    parser.add_argument("--host", help="only entries about this host")
    parser.add_argument("--buildset", help="only entries about this build set")
    parser.add_argument("--limit", type=_positive, metavar="N", help="at most N entries")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--branch", default=DEFAULT_BRANCH, help=f"ledger branch ({DEFAULT_BRANCH})"
    )
    parser.add_argument("--config", metavar="FILE", help="reconciler settings file (TOML)")
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    spec = args.repo
    if spec is None:
        settings = load_settings(args.config)
        spec = settings.repo or "."
    with _local_repo(spec, args.branch) as repo:
        ledger = Ledger(repo, branch=args.branch)
        if ledger.head() is None:
            if args.format == "json":
                print("[]")
            message = (
                f"no ledger yet: branch {args.branch} does not exist in {spec}; "
                "run reconciler apply"
            )
            print(message, file=sys.stderr if args.format == "json" else sys.stdout)
            return 0
        entries = ledger.entries(host=args.host, buildset=args.buildset, limit=args.limit)
    if args.format == "json":
        print(json.dumps([entry_json(e) for e in entries], indent=2))
        return 0
    if not entries:
        which = " and ".join(
            f"{k} {v}" for k, v in (("host", args.host), ("build set", args.buildset)) if v
        )
        print(f"no ledger entries for {which}")
        return 0
    print("\n\n".join(format_entry(e) for e in entries))
    return 0


def entry_json(entry: Entry) -> dict[str, Any]:
    """One entry as a JSON object (the trailers flattened next to commit, time, subject, body)."""
    data: dict[str, Any] = {
        "commit": entry.commit,
        "time": entry.time.isoformat(),
        "subject": entry.subject,
        "body": entry.body,
    }
    for key in ("generation", "buildset", "host", "stage", "outcome", "build"):
        data[key] = entry.trailers.get(key)
    return data


def _short(value: str | None) -> str | None:
    if value and re.fullmatch(r"[0-9a-f]{40,64}", value):
        return value[:12]
    return value


def format_entry(entry: Entry) -> str:
    """One entry as a text block: date, outcome, subject; then the ids; then the body."""
    when = entry.time.strftime("%Y-%m-%d %H:%M:%S %z")
    lines = [f"{when}  {entry.outcome or '?':<11} {entry.subject}"]
    facts = [
        ("buildset", entry.buildset),
        ("host", entry.host),
        ("stage", entry.stage),
        ("generation", _short(entry.generation)),
        ("build", _short(entry.build)),
        ("commit", _short(entry.commit)),
    ]
    lines.append("    " + "  ".join(f"{k} {v}" for k, v in facts if v))
    lines += [f"    | {line}".rstrip() for line in entry.body.splitlines()]
    return "\n".join(lines)


@contextmanager
def _local_repo(spec: str, branch: str) -> Iterator[Path]:
    """A local path for ``spec``: itself, or a temporary bare fetch of a URL's ledger branch."""
    path = Path(spec)
    if path.is_dir() or not _URL.match(spec):
        if not path.is_dir():
            raise RepoError(f"{spec}: no such directory")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="reconciler-history-") as tmp:
        repo = Path(tmp)
        git(repo, "init", "--quiet", "--bare")
        ref = f"refs/heads/{branch}"
        out = run_git(repo, ("fetch", "--quiet", "--no-tags", spec, f"+{ref}:{ref}"), timeout=300)
        if out.returncode != 0 and "couldn't find remote ref" not in out.stderr:
            raise LedgerError(f"cannot fetch {branch} from {spec}: {out.message()}")
        yield repo
