"""`reconciler apply`: one rollout of the config repo's commit, in the foreground."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from reconciler.commands.common import (
    ProgressPrinter,
    add_repo_argument,
    add_settings_arguments,
    repo_path,
    settings_from,
)
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.config.repofiles import resolve_commit
from reconciler.errors import RepoError, RolloutFailed, UsageError
from reconciler.facts.observe import observe
from reconciler.ledger import Ledger
from reconciler.lock import RepoLock
from reconciler.plan import format_text, make_plan
from reconciler.rollout.engine import converge
from reconciler.rollout.engine_types import Report
from reconciler.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="roll the config repo's commit out: source, build, test, production",
        description="Show the plan, ask, then run one rollout in the foreground. Exit 0 only "
        "if every host converged.",
    )
    add_repo_argument(parser)
    parser.add_argument("--rev", default="HEAD", help="commit to apply (default: HEAD)")
    parser.add_argument(
        "--buildset", action="append", metavar="S", help="only this build set (repeatable)"
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask before applying")
    add_settings_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    repo = repo_path(settings)
    try:
        commit = resolve_commit(repo, args.rev)
    except RepoError as exc:
        raise RepoError(
            f"{exc}; apply works on a commit of a git repository (the ledger is a "
            "branch of it): commit your change, or run `reconciler validate` on a "
            "plain directory"
        ) from exc
    config = load_config(repo, commit)
    for name in args.buildset or ():
        try:
            config.buildset(name)
        except KeyError:
            known = ", ".join(bs.name for bs in config.buildsets)
            raise UsageError(f"no build set {name!r} (known: {known})") from None
    with RepoLock(repo, command="apply"):
        show_plan(config, settings)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: pass --yes to apply without asking")
            answer = input("Apply this plan? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("nothing applied")
                return 0
        ledger = Ledger(repo, config.policy.status_branch)
        report = converge(
            config,
            settings=settings,
            ledger=ledger,
            buildsets=args.buildset,
            progress=ProgressPrinter(),
        )
    print_summary(report)
    if not report.converged:
        raise RolloutFailed("not every host converged; `reconciler history` says why")
    return 0


def show_plan(config: Config, settings: Settings) -> None:
    """The plan for every build set, from fresh facts (what `reconciler plan` prints)."""
    print(format_text(make_plan(config, observe(config, settings))))


def print_summary(report: Report) -> None:
    print()
    print("Summary:")
    for line in report.summary:
        print(f"  {line}")
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    print("  hosts: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))
