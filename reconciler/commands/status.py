"""`reconciler status [REPO] [--rev REV | --worktree] [--format text|json] [--offline]`.

One row per host. Columns, like compared with like:

- DESIRED: the build id the generation wants (12 hex); RUNNING: the build id
  the host runs (the reconciler's install marker on the running system; ``-``
  when it never installed there);
- REVISION: the source revision of the running kernel (``uname -v``); the
  desired one is in the line above the table;
- BE: the booted boot environment; IN SYNC: no step planned for the host;
  REACHABLE; LAST: the last outcome the ledger recorded for the host, marked
  ``(older: <generation>)`` when it belongs to another generation.

When the commit asked for does not validate, the refusal comes first and the
table shows the last good generation: the one the ledger says was rolled out,
else the newest commit before it that validates; the exit status is then 1.

Exit 0, or 1 when a host could not be reached or trusted (the table is printed
all the same, each reason on stderr), as ``plan`` does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.commands.common import (
    add_connection_arguments,
    add_filter_arguments,
    add_repo_argument,
    check_filters,
    repo_path,
    settings_from,
)
from reconciler.commands.plan import (
    add_revision_arguments,
    exit_status,
    ledger_facts,
    not_observed,
    observe_fleet,
    open_store,
    recorded_progress,
    report_not_observed,
    selection,
)
from reconciler.commands.revision import choose
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import ConfigInvalid, RepoError
from reconciler.facts.host import HostFacts
from reconciler.gitutil import run_git
from reconciler.lease import Lease, skew_margin, visible_leases
from reconciler.plan import Plan, Step, make_plan
from reconciler.plan.install import Running
from reconciler.plan.packages import PackageChange, drift_words
from reconciler.statusstore import StatusStore
from reconciler.vocabulary import RolloutStatus

COLUMNS = (
    ("host", "HOST"),
    ("buildset", "SET"),
    ("stage", "STAGE"),
    ("desired", "DESIRED"),
    ("running", "RUNNING"),
    ("revision", "REVISION"),
    ("be", "BE"),
    ("in_sync", "IN SYNC"),
    ("packages", "PACKAGES"),
    ("reachable", "REACHABLE"),
    ("last", "LAST"),
    ("lease", "LEASE"),
)
#: Commits looked at, newest first, for the last one that validates.
LOOKBACK = 50


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help=SUMMARIES["status"],
        description="Observe every host and show, per host, the desired build and what it runs. "
        "Exit 1 when a host cannot be reached or trusted, or the config commit is invalid.",
    )
    add_repo_argument(parser)
    add_revision_arguments(parser, "compare with")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--offline", action="store_true", help="use the ledger's last facts")
    add_filter_arguments(parser)
    add_connection_arguments(parser)
    parser.set_defaults(func=run)


def _last(store: StatusStore | None, config: Config, host: str, buildset: str) -> dict[str, Any]:
    """The host's last recorded outcome, and whether it belongs to ``config``'s generation."""
    status = store.host_status(buildset, host) if store is not None else None
    if not status or not status.get("outcome"):
        return {"last": None, "last_generation": None, "last_current": None}
    generation = str(status.get("generation") or "") or None
    current = generation == (config.commit or "worktree")
    return {"last": str(status["outcome"]), "last_generation": generation, "last_current": current}


def rows(
    config: Config, facts: dict[str, HostFacts], plan: Plan, store: StatusStore | None
) -> list[dict[str, Any]]:
    result = []
    for bs_plan in plan.buildsets:
        bs = config.buildset(bs_plan.name)
        steps: dict[str, int] = {}
        shown: dict[str, None] = {}
        packages: dict[str, str] = {}
        for stage in bs_plan.stages:
            for hp in stage.hosts:
                steps[hp.host] = steps.get(hp.host, 0) + len(hp.steps)
                packages.update(_package_words(hp.host, hp.steps))
                if stage.name in ("test", "production"):
                    shown[hp.host] = None
        for host in (h for h in bs.hosts if h.name in shown):
            hf = facts.get(host.name)
            reachable = hf is not None and hf.reachable
            running = Running.of(hf) if hf is not None and reachable else None
            versions = hf.versions if hf else None
            result.append(
                {
                    "host": host.name,
                    "buildset": bs.name,
                    "stage": host.stage,
                    "desired": bs_plan.build[:12],
                    "running": running.marker[:12] if running and running.marker else None,
                    "revision": versions.revision12 if versions else None,
                    "desired_revision": config.source.revision,
                    "kernel": versions.ident if versions else None,
                    "world": versions.userland if versions else None,
                    "be": running.booted_be if running else None,
                    "in_sync": reachable and steps.get(host.name, 0) == 0,
                    "packages": packages.get(host.name)
                    or (f"set {bs_plan.pkgset[:12]}" if bs_plan.pkgset and reachable else None),
                    "reachable": reachable,
                    **_last(store, config, host.name, bs.name),
                    "error": None if reachable else (hf.error if hf else "not observed"),
                }
            )
    return result


def _package_words(host: str, steps: tuple[Step, ...]) -> dict[str, str]:
    """host -> what its install does with packages ("3 packages to upgrade"), if it does."""
    for step in steps:
        drifted = drift_words(step.detail)
        if drifted is not None:
            return {host: drifted}
        change = step.detail.get("packages")
        if isinstance(change, dict):
            words = PackageChange(
                str(change.get("pkgset") or ""),
                *(tuple(change.get(key) or ()) for key in ("install", "upgrade", "remove")),
            ).words()
            return {host: words}
    return {}


def _cell(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if column == "last" and value and row.get("last_current") is False:
        return f"{value} (older: {str(row['last_generation'])[:12]})"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def format_table(table: list[dict[str, Any]]) -> str:
    cells = [[heading for _, heading in COLUMNS]]
    cells += [[_cell(row, column) for column, _ in COLUMNS] for row in table]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    for row in table:
        if row["error"]:
            lines.append(f"{row['host']}: {row['error']}")
    return "\n".join(lines)


def last_good(repo: Path, bad: str | None, store_of: Any) -> tuple[Config, str] | None:
    """The generation the fleet runs when ``bad`` is refused, and how it was found.

    The newest commit before ``bad`` that the ledger records as rolled out
    (a set's status/<set>/rollout.json, converged); else the newest commit
    before it that validates.
    """
    if bad is None:
        return None
    out = run_git(repo, ("rev-list", "--first-parent", f"--max-count={LOOKBACK}", bad, "--"))
    earlier = out.text.split()[1:] if out.returncode == 0 else []
    newest: Config | None = None
    for commit in earlier:
        try:
            newest = load_config(repo, commit)
            break
        except (ConfigInvalid, RepoError):
            continue
    if newest is None:
        return None
    store: StatusStore | None = store_of(newest)
    rolled_out = set()
    for bs in newest.buildsets:
        progress = store.progress(bs.name) if store is not None else None
        if progress and progress.generation and progress.status == RolloutStatus.CONVERGED:
            rolled_out.add(progress.generation)
    for commit in earlier:
        if commit in rolled_out:
            try:
                return load_config(repo, commit), "the generation the ledger records as rolled out"
            except (ConfigInvalid, RepoError):
                break
    return newest, "the newest commit before it that validates"


def _refusal(choice_label: str, exc: ConfigInvalid, good: tuple[Config, str] | None) -> list[str]:
    lines = [f"{choice_label} is refused: {exc}; it is not applied:"]
    lines += [f"  {problem}" for problem in exc.problems]
    if good is None:
        lines.append("No earlier commit validates: nothing to compare the hosts with.")
    else:
        config, how = good
        lines.append(f"The fleet runs the last good generation: {str(config.commit)[:12]} ({how}).")
    return lines


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    repo = repo_path(settings)
    choice = choose(
        repo, branch=settings.branch, rev=args.rev, worktree=args.worktree, verb="comparing with"
    )
    refused: dict[str, Any] | None = None
    try:
        config = load_config(repo, choice.commit)
    except ConfigInvalid as exc:
        good = last_good(repo, choice.commit, lambda c: open_store(repo, c))
        refused = {
            "commit": choice.commit,
            "problems": [str(p) for p in exc.problems],
            "text": _refusal(choice.label, exc, good),
        }
        if good is None:
            if args.format == "json":
                nothing = {"refused": _public(refused), "generation": None}
                print(json.dumps({**nothing, "hosts": [], "leases": {}}, indent=2))
            else:
                print("\n".join(refused["text"]))
            return 1
        config = good[0]
    check_filters(config, args.buildset, args.host)
    store = open_store(repo, config)
    if args.offline:
        recorded = ledger_facts(store, config)
        facts = {
            h.name: recorded.get(h.name)
            or HostFacts.unreachable(h.name, "no facts recorded in the ledger")
            for h in config.hosts
        }
    else:
        facts = observe_fleet(config, settings)
    sets, hosts = selection(args)
    plan = make_plan(config, facts, recorded_progress(store, config), buildsets=sets, hosts=hosts)
    table = [
        row for row in rows(config, facts, plan, store) if hosts is None or row["host"] in hosts
    ]
    # Which replica holds each build set (reconciler.lease; none with a single reconciler).
    leases = visible_leases(repo, contact_origin=not args.offline)
    margin, now = skew_margin(settings.lease_seconds), time.time()
    for row in table:
        row["lease"] = _holder(leases.get(row["buildset"]), margin, now)
    if args.format == "json":
        body = {
            "refused": _public(refused) if refused else None,
            "generation": config.commit or "worktree",
            "revision": config.source.revision,
            "hosts": table,
            "leases": {
                name: {"holder": lease.holder, "acquired": lease.acquired, "expires": lease.expires}
                for name, lease in sorted(leases.items())
            },
        }
        print(json.dumps(body, indent=2))
    else:
        if refused:
            print("\n".join(refused["text"]) + "\n")
        print(
            f"Desired: generation {(config.commit or 'worktree')[:12]}, "
            f"{config.source.branch} @ {config.source.revision[:12]}"
        )
        print(format_table(table))
    missing = not_observed(plan, facts)
    report_not_observed(missing, args.offline)
    code = exit_status(plan, missing, offline=args.offline)
    return 1 if refused else code


def _holder(lease: Lease | None, margin: float, now: float) -> str | None:
    if lease is None:
        return None
    return f"{lease.holder} (expired)" if lease.expired(now, margin) else lease.holder


def _public(refused: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in refused.items() if k != "text"} if refused else None
