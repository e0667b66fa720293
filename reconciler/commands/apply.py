"""`reconciler apply [REPO | PLANFILE]`: one rollout of the config repo's commit, in the foreground.

What it applies is what ``plan`` plans: the tracked branch's tip (in a
checkout, ``HEAD``), ``--rev`` another commit, ``--worktree`` the files on
disk (said loudly), or ``PLANFILE``, a plan saved by ``plan --out``, applied
only if planning again now gives the same plan.

Every outcome is recorded on the config repo's origin when the repo is a
clone (reconciler.commands.audit): there is one audit. Output: one line per
host per step (on a terminal the step in progress is a live line), ``-v``
for every remote line, ``-q`` for the summary only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from reconciler.commands import SUMMARIES, savedplan
from reconciler.commands.audit import local_origin, writing_ledger
from reconciler.commands.common import (
    ProgressPrinter,
    add_connection_arguments,
    add_filter_arguments,
    check_filters,
    repo_path,
    require_client_key,
    settings_from,
)
from reconciler.commands.plan import (
    add_revision_arguments,
    open_store,
    recorded_progress,
    selection,
)
from reconciler.commands.revision import Choice, choose
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import RolloutFailed, UsageError
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe
from reconciler.lock import RepoLock
from reconciler.plan import Plan, format_text, make_plan
from reconciler.plan.format import NO_CHANGES
from reconciler.rollout.engine import converge
from reconciler.rollout.engine_types import Report
from reconciler.settings import Settings
from reconciler.statusstore import StatusStore
from reconciler.vocabulary import GOOD_HOST_OUTCOMES, HostOutcome


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        help=SUMMARIES["apply"],
        description="Show the plan, ask, then run one rollout in the foreground. Exit 0 only "
        "if every host converged. TARGET is the config repo, or a plan saved by "
        "`reconciler plan --out FILE` (applied without asking, and only if it still holds).",
    )
    parser.add_argument(
        "repo",
        nargs="?",
        default=None,
        metavar="TARGET",
        help="config repo (default: the settings' repo, else .) or a saved plan file",
    )
    add_revision_arguments(parser, "apply")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask before applying")
    parser.add_argument(
        "--retry-quarantined",
        action="store_true",
        help="this once, try a build that is quarantined (it failed its test stage) again",
    )
    parser.add_argument(
        "--local-ledger",
        action="store_true",
        help="record outcomes in this clone only when its origin cannot be reached "
        "(the audit then differs from the daemon's until pushed)",
    )
    add_filter_arguments(parser)
    add_connection_arguments(parser)
    parser.set_defaults(func=run)


def _saved(args: argparse.Namespace) -> savedplan.SavedPlan | None:
    """The saved plan TARGET names, if it names a file (a repo is a directory)."""
    if args.repo is None:
        return None
    path = Path(args.repo)
    if not path.is_file():
        return None
    if not savedplan.is_saved_plan(path):
        raise UsageError(
            f"{path} is a file, but neither a config repo directory nor a plan saved by "
            "`reconciler plan --out`"
        )
    saved = savedplan.load(path)
    if args.rev or args.worktree:
        raise UsageError(f"{path} is a saved plan: it names its commit (drop --rev/--worktree)")
    for flag, given, recorded in (
        ("--buildset", args.buildset, saved.buildsets),
        ("--host", args.host, saved.hosts),
    ):
        if given and tuple(given) != recorded:
            raise UsageError(f"{path} was planned with {flag} {recorded}; drop {flag}")
    args.repo = str(saved.repo)
    args.buildset = list(saved.buildsets) if saved.buildsets else None
    args.host = list(saved.hosts) if saved.hosts else None
    return saved


def run(args: argparse.Namespace) -> int:
    saved = _saved(args)
    settings = settings_from(args)
    repo = repo_path(settings)
    if saved is not None:
        choice = Choice(saved.generation, f"the saved plan's commit {saved.generation[:12]}")
    else:
        choice = choose(
            repo,
            branch=settings.branch,
            rev=args.rev,
            worktree=args.worktree,
            verb="applying",
            commits_only=True,
        )
    config = load_config(repo, choice.commit)
    check_filters(config, args.buildset, args.host)
    require_client_key(settings)
    printer = ProgressPrinter(verbose=args.verbose, quiet=args.quiet, config=config)
    with contextlib.ExitStack() as held:
        held.enter_context(RepoLock(repo, command="apply"))
        origin = local_origin(repo)
        if origin is not None:
            # The daemon locks the repo it clones: a manual apply from a clone waits its turn.
            held.enter_context(RepoLock(origin, command="apply"))
        ledger = writing_ledger(
            repo, config.policy.status_branch, command="apply", local=args.local_ledger
        )
        facts, plan = show_plan(
            config, settings, args, quiet=bool(args.quiet), store=StatusStore(ledger)
        )
        if saved is not None:
            savedplan.check(saved, plan, facts)
        if plan.in_sync:
            print(NO_CHANGES)
            return 0
        if saved is None and not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: pass --yes to apply without asking")
            answer = input("Apply this plan? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("nothing applied")
                return 0
        stop = threading.Event()
        try:
            with interrupts(stop):
                report = converge(
                    config,
                    settings=settings,
                    ledger=ledger,
                    buildsets=args.buildset,
                    hosts=args.host,
                    progress=printer,
                    facts=facts,
                    stop=stop,
                    retry_quarantined=args.retry_quarantined,
                )
        finally:
            printer.close()
    print_summary(report)
    if report.interrupted:
        print(
            "reconciler: interrupted; the ledger records where each host stands: "
            "run `reconciler apply` again to resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    if not report.converged and waits_only(report):
        for result in report.results:
            if result.gated:
                print(f"reconciler: {result.host} waits: {result.message}", file=sys.stderr)
        print(
            "reconciler: nothing failed; what could run now ran. Run `reconciler apply` again "
            "then (the daemon looks again at every poll)",
            file=sys.stderr,
        )
        return TEMPFAIL
    if not report.converged:
        raise RolloutFailed("not every host converged; `reconciler history` says why")
    return 0


#: The shell's exit status for "ended by SIGINT".
INTERRUPTED = 130
#: sysexits(3) EX_TEMPFAIL, "try again later": hosts wait for a maintenance window, a
#: freeze or another reconciler working on them; nothing failed.
TEMPFAIL = 75


def waits_only(report: Report) -> bool:
    """Every host is on the desired state or waits for a gate that opens by itself."""
    return any(r.gated for r in report.results) and all(
        r.gated or r.outcome in GOOD_HOST_OUTCOMES or r.outcome == HostOutcome.DRIFT
        for r in report.results
    )


@contextlib.contextmanager
def interrupts(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets ``stop`` (the running step finishes); the second exits at once.

    Exiting at once is safe: builds and installs run detached on the hosts and
    every step's phase is in the ledger before it acts, so the next apply
    re-attaches and resumes.
    """

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            sys.stderr.write(
                "\nreconciler: second interrupt: exiting now. Jobs already started keep "
                "running on the hosts; run `reconciler apply` again to resume.\n"
            )
            sys.stderr.flush()
            os._exit(INTERRUPTED)  # worker threads would otherwise be joined at exit
        stop.set()
        sys.stderr.write(
            "\nreconciler: interrupt received: finishing the running step, starting no new "
            "one (Ctrl-C again to exit at once)\n"
        )
        sys.stderr.flush()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def show_plan(
    config: Config,
    settings: Settings,
    args: argparse.Namespace | None = None,
    *,
    quiet: bool = False,
    store: StatusStore | None = None,
) -> tuple[dict[str, HostFacts], Plan]:
    """Observe every host once and print the plan made from those facts; the facts and plan.

    The rollout starts from the same facts (it observes a host again after
    each step), so what is shown is what is carried out.
    """
    facts = observe(config, settings)
    if store is None:
        store = open_store(repo_path(settings), config)
    elif store.ledger.head() is None:
        store = None  # no ledger yet: nothing recorded
    sets, hosts = selection(args) if args is not None else (None, None)
    progress = recorded_progress(store, config)
    if args is not None and getattr(args, "retry_quarantined", False):
        progress = {name: replace(p, quarantined={}) for name, p in progress.items()}
    plan = make_plan(config, facts, progress, buildsets=sets, hosts=hosts)
    if not quiet and not plan.in_sync:
        print(format_text(plan))
    return facts, plan


def print_summary(report: Report) -> None:
    print()
    print("Summary:")
    for line in report.summary:
        print(f"  {line}")
    for result in report.results:
        if result.outcome in GOOD_HOST_OUTCOMES or result.outcome == HostOutcome.SKIPPED:
            continue
        print(f"  {result.host} {result.outcome}: {result.message}")
        for line in result.detail.splitlines():
            print(f"    | {line}".rstrip())
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    print("  hosts: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))
