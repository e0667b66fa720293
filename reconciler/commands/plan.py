"""`reconciler plan [REPO] [--rev REV | --worktree] [--format text|json|markdown] [--offline]`.

Plans the same thing ``apply`` applies: the tracked branch's tip (in a
checkout, ``HEAD``), ``--rev`` another commit, ``--worktree`` the files on
disk; stderr says so whenever the files on disk differ from what is planned.
Observes every host (or, with ``--offline``, reads the facts the ledger
recorded last, so a pull-request check needs no SSH key) and prints what a
rollout would do: per build set, per stage, per host, with counts of builds
and reboots and the diff of every file it would change. ``--out FILE`` saves
the plan for ``apply FILE``.

Offline, a host the ledger has no facts for (a repo without a ledger: every
host) is planned as a host with nothing in place, and says so; the facts'
age is printed above the plan.

Exit codes (README's table): 0 the plan is complete, 1 a host could not be
reached or trusted (the plan is printed all the same, that host marked
``unreachable``; each reason on stderr), or any other error. With
``--detailed-exitcode``, as ``terraform plan`` has it: 0 nothing to do, 2
changes pending, 1 error or unreachable/untrusted host. ``--offline`` contacts
no host, so a host without recorded facts is a pending change there, not an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES, savedplan
from reconciler.commands.audit import reading_ledger
from reconciler.commands.common import (
    add_connection_arguments,
    add_filter_arguments,
    add_repo_argument,
    check_filters,
    repo_path,
    require_client_key,
    settings_from,
)
from reconciler.commands.revision import choose
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import LedgerError, RepoError
from reconciler.facts.host import HostFacts
from reconciler.plan import Plan, format_markdown, format_text, make_plan
from reconciler.progress import SetProgress
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore

#: ``--detailed-exitcode``: the plan has steps (terraform's convention).
EXIT_CHANGES = 2
UNKNOWN_NOTE = "facts unknown (nothing observed yet): planned as a host with nothing in place"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help=SUMMARIES["plan"],
        description="Compare every host's facts with the config repo and print the steps a "
        "rollout would take. Read-only. Exit 0, or 1 when a host cannot be reached or "
        "trusted; with --detailed-exitcode 0 nothing to do, 2 changes pending, 1 error.",
    )
    add_repo_argument(parser)
    add_revision_arguments(parser)
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
    parser.add_argument(
        "--out", metavar="FILE", type=Path, help="save the plan for `reconciler apply FILE`"
    )
    add_filter_arguments(parser)
    add_connection_arguments(parser)
    parser.set_defaults(func=run)


def add_revision_arguments(parser: argparse.ArgumentParser, what: str = "plan") -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--rev", help=f"{what} this commit (default: the tracked branch's tip; in a checkout, HEAD)"
    )
    which.add_argument(
        "--worktree", action="store_true", help=f"{what} the files on disk, uncommitted edits too"
    )


def open_store(repo: Path, config: Config) -> StatusStore | None:
    """The ledger's status store (the origin's when the repo is a clone); None without a ledger."""
    try:
        store = StatusStore(reading_ledger(repo, config.policy.status_branch))
        return store if store.ledger.head() is not None else None
    except RepoError:
        return None  # a plain directory: nothing recorded


def ledger_facts(store: StatusStore | None, config: Config) -> dict[str, HostFacts]:
    """The facts the ledger recorded last, for each host that has some."""
    if store is None:
        return {}
    found: dict[str, HostFacts] = {}
    for host in config.hosts:
        try:
            recorded = store.recorded_facts(host.buildset, host.name)
        except ValueError as exc:
            raise LedgerError(str(exc)) from exc
        if recorded is not None:
            found[host.name] = recorded
    return found


def recorded_progress(store: StatusStore | None, config: Config) -> dict[str, SetProgress]:
    """Each build set's recorded progress (the planner's second input); none without a ledger."""
    if store is None:
        return {}
    return store.all_progress(bs.name for bs in config.buildsets)


def observe_fleet(config: Config, settings: Settings) -> dict[str, HostFacts]:
    from reconciler.facts.observe import observe  # SSH only when the hosts are asked

    require_client_key(settings)
    return observe(config, settings)


def facts_age(recorded: Mapping[str, HostFacts], unknown: Collection[str], now: datetime) -> str:
    """One line: how old the recorded facts are, and which hosts have none."""
    times = sorted(t for t in (_when(hf.observed_at) for hf in recorded.values()) if t)
    if not recorded:
        return (
            "Facts: nothing observed yet (no ledger, or no facts in it): every host is planned "
            "as having nothing in place; the first apply observes them."
        )
    if times:
        newest, oldest = times[-1], times[0]
        age = f"observed {_ago(now - newest)} ({newest:%Y-%m-%d %H:%M} UTC)"
        if (newest - oldest).total_seconds() > 3600:
            age += f"; the oldest {_ago(now - oldest)} ({oldest:%Y-%m-%d %H:%M} UTC)"
    else:
        age = "observed at an unrecorded time"
    text = f"Facts: as the ledger recorded them, {age}."
    if unknown:
        text += f" No facts for {', '.join(unknown)}: planned as having nothing in place."
    return text


def _when(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ago(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def mark_unknown(plan: Plan, unknown: Collection[str]) -> Plan:
    """The plan with a note on every host whose facts are unknown."""
    if not unknown:
        return plan

    def marked(stage: Any) -> Any:
        hosts = tuple(
            dataclasses.replace(hp, notes=(UNKNOWN_NOTE, *hp.notes)) if hp.host in unknown else hp
            for hp in stage.hosts
        )
        return dataclasses.replace(stage, hosts=hosts)

    buildsets = tuple(
        dataclasses.replace(bs, stages=tuple(marked(st) for st in bs.stages))
        for bs in plan.buildsets
    )
    return dataclasses.replace(plan, shared=marked(plan.shared), buildsets=buildsets)


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


def selection(args: argparse.Namespace) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    sets = getattr(args, "buildset", None)
    hosts = getattr(args, "host", None)
    return (frozenset(sets) if sets else None, frozenset(hosts) if hosts else None)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    repo = repo_path(settings)
    choice = choose(repo, branch=settings.branch, rev=args.rev, worktree=args.worktree)
    config = load_config(repo, choice.commit)
    check_filters(config, args.buildset, args.host)
    store = open_store(repo, config)
    unknown: list[str] = []
    preamble: list[str] = []
    if args.offline:
        recorded = ledger_facts(store, config)
        unknown = [h.name for h in config.hosts if h.name not in recorded]
        facts = {**recorded, **{name: HostFacts(name, True) for name in unknown}}
        preamble.append(facts_age(recorded, unknown, datetime.now(UTC)))
    else:
        facts = observe_fleet(config, settings)
    sets, hosts = selection(args)
    plan = make_plan(config, facts, recorded_progress(store, config), buildsets=sets, hosts=hosts)
    plan = mark_unknown(plan, unknown)
    if args.out is not None:
        savedplan.save(
            args.out, repo=repo, plan=plan, facts=facts, buildsets=args.buildset, hosts=args.host
        )
    if args.format == "json":
        print(json.dumps(plan.to_json(), indent=2))
    elif args.format == "markdown":
        print(format_markdown(plan, preamble), end="")
    else:
        print(format_text(plan, preamble))
    if args.out is not None:
        print(f"reconciler: plan saved to {args.out}; apply it with: reconciler apply {args.out}",
              file=sys.stderr)  # fmt: skip
    missing = not_observed(plan, facts)
    report_not_observed(missing, args.offline)
    return exit_status(plan, missing, offline=args.offline, detailed=args.detailed_exitcode)
