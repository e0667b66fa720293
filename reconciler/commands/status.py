"""`reconciler status [REPO] [--format text|json] [--offline]`: one row per host.

Columns: host, build set, stage, desired build (12 hex), what runs (kernel
revision from ``uname -v``, userland version, booted boot environment),
whether the host is in sync (no step planned for it) and reachable, and the
last outcome the ledger recorded for it.

Exit 0, or 1 when a host could not be reached or trusted (the table is printed
all the same, each reason on stderr), as ``plan`` does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.commands.common import (
    add_repo_argument,
    add_settings_arguments,
    repo_path,
    settings_from,
)
from reconciler.commands.plan import (
    exit_status,
    gather_facts,
    not_observed,
    recorded_progress,
    report_not_observed,
)
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import ReconcilerError
from reconciler.facts.host import HostFacts
from reconciler.ledger import Ledger
from reconciler.plan import Plan, make_plan
from reconciler.statusstore import StatusStore

COLUMNS = (
    "host",
    "buildset",
    "stage",
    "desired",
    "kernel",
    "world",
    "be",
    "in_sync",
    "reachable",
    "last",
)
HEADINGS = (
    "HOST",
    "SET",
    "STAGE",
    "DESIRED",
    "KERNEL",
    "WORLD",
    "BE",
    "IN SYNC",
    "REACHABLE",
    "LAST",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help=SUMMARIES["status"],
        description="Observe every host and show, per host, the desired build and what it runs. "
        "Exit 1 when a host cannot be reached or trusted.",
    )
    add_repo_argument(parser)
    parser.add_argument("--rev", help="compare with this commit (default: the files on disk)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--offline", action="store_true", help="use the ledger's last facts")
    add_settings_arguments(parser)
    parser.set_defaults(func=run)


def _last_outcomes(repo: Path, config: Config) -> dict[str, str]:
    """host -> last outcome in the ledger; empty when there is none (status still works)."""
    try:
        store = StatusStore(Ledger(repo, config.policy.status_branch))
        if store.ledger.head() is None:
            return {}
        found = {}
        for host in config.hosts:
            outcome = store.last_outcome(host.buildset, host.name)
            if outcome:
                found[host.name] = outcome
        return found
    except ReconcilerError:
        return {}


def rows(
    config: Config, facts: dict[str, HostFacts], plan: Plan, last: dict[str, str]
) -> list[dict[str, Any]]:
    result = []
    for bs_plan in plan.buildsets:
        bs = config.buildset(bs_plan.name)
        steps: dict[str, int] = {}
        for stage in bs_plan.stages:
            for hp in stage.hosts:
                steps[hp.host] = steps.get(hp.host, 0) + len(hp.steps)
        for host in bs.hosts:
            hf = facts.get(host.name)
            reachable = hf is not None and hf.reachable
            versions = hf.versions if hf else None
            booted = hf.boot_envs.booted if hf and hf.boot_envs else None
            result.append(
                {
                    "host": host.name,
                    "buildset": bs.name,
                    "stage": host.stage,
                    "desired": bs_plan.build[:12],
                    "kernel": versions.revision12 if versions else None,
                    "world": versions.userland if versions else None,
                    "be": booted.name if booted else None,
                    "in_sync": reachable and steps.get(host.name, 0) == 0,
                    "reachable": reachable,
                    "last": last.get(host.name),
                    "error": None if reachable else (hf.error if hf else "not observed"),
                }
            )
    return result


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def format_table(table: list[dict[str, Any]]) -> str:
    cells = [list(HEADINGS)] + [[_cell(row[c]) for c in COLUMNS] for row in table]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    for row in table:
        if row["error"]:
            lines.append(f"{row['host']}: {row['error']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    repo = repo_path(settings)
    config = load_config(repo, args.rev)
    facts = gather_facts(config, settings, repo, args.offline)
    plan = make_plan(config, facts, recorded_progress(repo, config))
    table = rows(config, facts, plan, _last_outcomes(repo, config))
    if args.format == "json":
        print(json.dumps({"hosts": table}, indent=2))
    else:
        print(format_table(table))
    missing = not_observed(plan, facts)
    report_not_observed(missing, args.offline)
    return exit_status(plan, missing, offline=args.offline)
