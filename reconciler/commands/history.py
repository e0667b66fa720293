"""`reconciler history`: the ledger (the status branch), newest first.

By default one line per outcome: when, outcome, subject. The entries that
only say a step started (``Reconciler-Outcome: started``: installing,
rebooting, build started ...) are left out; ``--steps`` shows them too.
``-v`` shows each entry whole (its ids, who wrote it, its body: a failed
build's last log lines). ``-n N`` shows the newest N; ``--buildset`` and
``--host`` (repeatable) narrow it; ``--format json`` prints the same
selection as a JSON array (schema/history.schema.json).

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
from reconciler.ledger import DEFAULT_BRANCH, TRAILERS, Entry, Ledger
from reconciler.settings import load_settings
from reconciler.vocabulary import LedgerOutcome

#: The Reconciler-* trailers each JSON entry carries (None when absent).
TRAILER_KEYS = tuple(attr for attr, _ in TRAILERS)
STARTED = LedgerOutcome.STARTED
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/:]+:(?!//))", re.IGNORECASE)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help=SUMMARIES["history"],
        description="Show the reconciler's ledger (the status branch of the config repo): "
        "one line per outcome, newest first.",
    )
    parser.add_argument(
        "repo", nargs="?", metavar="REPO", help="config repo (default: settings, then .)"
    )
    parser.add_argument(
        "--host", action="append", metavar="H", help="only entries about this host (repeatable)"
    )
    parser.add_argument(
        "--buildset", action="append", metavar="S", help="only this build set (repeatable)"
    )
    parser.add_argument(
        "-n", "--limit", type=_positive, metavar="N", help="the newest N entries only"
    )
    parser.add_argument(
        "--steps", action="store_true", help="also the entries that only say a step started"
    )
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


def select(
    entries: list[Entry],
    *,
    hosts: list[str] | None,
    buildsets: list[str] | None,
    steps: bool,
    limit: int | None,
) -> tuple[list[Entry], int]:
    """The entries to show, and how many step entries were left out."""
    chosen: list[Entry] = []
    hidden = 0
    for entry in entries:
        if hosts and entry.host not in hosts:
            continue
        if buildsets and entry.buildset not in buildsets:
            continue
        if not steps and entry.outcome == STARTED:
            hidden += 1
            continue
        if limit is not None and len(chosen) >= limit:
            break
        chosen.append(entry)
    return chosen, hidden


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
        single_host = args.host[0] if args.host and len(args.host) == 1 else None
        single_set = args.buildset[0] if args.buildset and len(args.buildset) == 1 else None
        entries, hidden = select(
            ledger.entries(host=single_host, buildset=single_set),
            hosts=args.host,
            buildsets=args.buildset,
            steps=args.steps,
            limit=args.limit,
        )
    if args.format == "json":
        print(json.dumps([entry_json(e) for e in entries], indent=2))
        return 0
    if not entries:
        which = " and ".join(
            f"{k} {', '.join(v)}"
            for k, v in (("host", args.host), ("build set", args.buildset))
            if v
        )
        print(f"no ledger entries for {which}" if which else "no ledger entries")
        return 0
    if args.verbose:
        print("\n\n".join(format_entry(e) for e in entries))
    else:
        print("\n".join(format_line(e) for e in entries))
        if hidden and not args.quiet:
            print(
                f"({hidden} step entr{'ies' if hidden != 1 else 'y'} not shown: --steps shows "
                "them, -v each entry whole)",
                file=sys.stderr,
            )
    return 0


def entry_json(entry: Entry) -> dict[str, Any]:
    """One entry as a JSON object (the trailers flattened next to commit, time, subject, body)."""
    data: dict[str, Any] = {
        "commit": entry.commit,
        "time": entry.time.isoformat(),
        "subject": entry.subject,
        "body": entry.body,
    }
    for key in TRAILER_KEYS:
        data[key] = entry.trailers.get(key)
    return data


def format_line(entry: Entry) -> str:
    """One entry as one line: date, outcome, subject."""
    when = entry.time.strftime("%Y-%m-%d %H:%M:%S %z")
    return f"{when}  {entry.outcome or '?':<11} {entry.subject}"


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
        ("by", entry.actor),
        ("command", entry.command),
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
