"""`reconciler plan [REPO] [--rev REV] [--format text|json|markdown] [--offline]`.

Observes every host (or, with ``--offline``, reads the facts the ledger
recorded last, so a pull-request check needs no SSH key) and prints what a
rollout would do: per build set, per stage, per host, with counts of builds
and reboots. Exit 0 whether or not changes are pending.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconciler.commands.common import (
    add_repo_argument,
    add_settings_arguments,
    repo_path,
    settings_from,
)
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import LedgerError, RepoError
from reconciler.facts.host import HostFacts
from reconciler.ledger import Ledger
from reconciler.plan import format_markdown, format_text, make_plan
from reconciler.progress import SetProgress
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show what a rollout would change, per build set, stage and host",
        description="Compare every host's facts with the config repo and print the steps a "
        "rollout would take. Read-only; exit 0 whether or not changes are pending.",
    )
    add_repo_argument(parser)
    parser.add_argument("--rev", help="plan this commit (default: the files on disk)")
    parser.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="output format"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the facts last recorded in the ledger instead of SSH (for PR checks)",
    )
    add_settings_arguments(parser)
    parser.set_defaults(func=run)


def ledger_facts(repo: Path, config: Config) -> dict[str, HostFacts]:
    """The facts the ledger recorded last for every host (raises when there is no ledger)."""
    store = StatusStore(Ledger(repo, config.policy.status_branch))
    if store.ledger.head() is None:
        raise LedgerError(
            f"no ledger yet: branch {config.policy.status_branch!r} of {repo} has no commits, "
            "so there are no recorded facts; run `reconciler apply` (or plan without --offline)"
        )
    found: dict[str, HostFacts] = {}
    for host in config.hosts:
        try:
            recorded = store.recorded_facts(host.buildset, host.name)
        except ValueError as exc:
            raise LedgerError(str(exc)) from exc
        found[host.name] = recorded or HostFacts.unreachable(
            host.name, "no facts recorded in the ledger"
        )
    return found


def recorded_progress(repo: Path, config: Config) -> dict[str, SetProgress]:
    """Each build set's recorded progress (the planner's second input); none without a ledger."""
    try:
        store = StatusStore(Ledger(repo, config.policy.status_branch))
        return store.all_progress(bs.name for bs in config.buildsets)
    except RepoError:
        return {}  # a plain directory: nothing recorded


def gather_facts(
    config: Config, settings: Settings, repo: Path, offline: bool
) -> dict[str, HostFacts]:
    if offline:
        return ledger_facts(repo, config)
    from reconciler.facts.observe import observe

    return observe(config, settings)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    repo = repo_path(settings)
    config = load_config(repo, args.rev)
    facts = gather_facts(config, settings, repo, args.offline)
    plan = make_plan(config, facts, recorded_progress(repo, config))
    if args.format == "json":
        print(json.dumps(plan.to_json(), indent=2))
    elif args.format == "markdown":
        print(format_markdown(plan), end="")
    else:
        print(format_text(plan))
    return 0
