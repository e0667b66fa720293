"""`reconciler plan [REPO] [--rev REV] [--format text|json|markdown] [--offline]`.

Observes every host (or, with ``--offline``, reads the facts the ledger
recorded last, so a pull-request check needs no SSH key) and prints what a
rollout would do: per build set, per stage, per host, with counts of builds
and reboots.

Exit codes (README's table): 0 the plan is complete, 1 a host could not be
reached or trusted (the plan is printed all the same, that host marked
``unreachable``; each reason on stderr), or any other error. With
``--detailed-exitcode``, as ``terraform plan`` has it: 0 nothing to do, 2
changes pending, 1 error or unreachable/untrusted host. ``--offline`` contacts
no host, so a host without recorded facts is a pending change there, not an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES
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
from reconciler.plan import Plan, format_markdown, format_text, make_plan
from reconciler.progress import SetProgress
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore

#: ``--detailed-exitcode``: the plan has steps (terraform's convention).
EXIT_CHANGES = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help=SUMMARIES["plan"],
        description="Compare every host's facts with the config repo and print the steps a "
        "rollout would take. Read-only. Exit 0, or 1 when a host cannot be reached or "
        "trusted; with --detailed-exitcode 0 nothing to do, 2 changes pending, 1 error.",
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
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing is to do, 2 when changes are pending, "
        "1 on an error or an unreachable or untrusted host (as terraform plan)",
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


def not_observed(plan: Plan, facts: Mapping[str, HostFacts]) -> dict[str, str]:
    """Host -> why it could not be observed (refused, timed out, key rejected ...)."""
    shared = [h.host for h in plan.shared.hosts if not h.reachable]
    names = dict.fromkeys([*shared, *(name for bs in plan.buildsets for name in bs.unreachable)])
    found = {}
    for name in names:
        hf = facts.get(name)
        found[name] = (hf.error if hf is not None else None) or "not observed"
    return found


def exit_status(
    plan: Plan, missing: Mapping[str, str], *, offline: bool, detailed: bool = False
) -> int:
    """0, 1 (a host not reached or trusted) or, with ``detailed``, 2 (changes pending).

    Offline nothing is contacted, so a host without recorded facts is no error.
    """
    if missing and not offline:
        return 1
    if detailed and not plan.in_sync:
        return EXIT_CHANGES
    return 0


def report_not_observed(missing: Mapping[str, str], offline: bool) -> None:
    """Say on stderr which hosts were not observed, and why (nothing when offline)."""
    if offline or not missing:
        return
    for name, why in missing.items():
        print(f"reconciler: error: {name}: {why}", file=sys.stderr)
    count = len(missing)
    print(
        f"reconciler: {count} host{'s' if count != 1 else ''} could not be reached or "
        "trusted; what they need is unknown",
        file=sys.stderr,
    )


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
    missing = not_observed(plan, facts)
    report_not_observed(missing, args.offline)
    return exit_status(plan, missing, offline=args.offline, detailed=args.detailed_exitcode)
