"""`reconciler apply`: one rollout of the config repo's commit, in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from types import FrameType
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.commands.common import (
    ProgressPrinter,
    add_repo_argument,
    add_settings_arguments,
    repo_path,
    settings_from,
)
from reconciler.commands.plan import recorded_progress
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.config.repofiles import resolve_commit
from reconciler.errors import RepoError, RolloutFailed, UsageError
from reconciler.facts.host import HostFacts
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
        help=SUMMARIES["apply"],
        description="Show the plan, ask, then run one rollout in the foreground. Exit 0 only "
        "if every host converged.",
    )
    add_repo_argument(parser)
    parser.add_argument("--rev", default="HEAD", help="commit to apply (default: HEAD)")
    parser.add_argument(
        "--buildset", action="append", metavar="S", help="only this build set (repeatable)"
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask before applying")
    parser.add_argument(
        "--retry-quarantined",
        action="store_true",
        help="this once, try a build that is quarantined (it failed its test stage) again",
    )
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
        facts = show_plan(config, settings, retry_quarantined=args.retry_quarantined)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: pass --yes to apply without asking")
            answer = input("Apply this plan? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("nothing applied")
                return 0
        ledger = Ledger(repo, config.policy.status_branch)
        stop = threading.Event()
        with interrupts(stop):
            report = converge(
                config,
                settings=settings,
                ledger=ledger,
                buildsets=args.buildset,
                progress=ProgressPrinter(),
                facts=facts,
                stop=stop,
                retry_quarantined=args.retry_quarantined,
            )
    print_summary(report)
    if report.interrupted:
        print(
            "reconciler: interrupted; the ledger records where each host stands: "
            "run `reconciler apply` again to resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    if not report.converged:
        raise RolloutFailed("not every host converged; `reconciler history` says why")
    return 0


#: The shell's exit status for "ended by SIGINT".
INTERRUPTED = 130


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
    config: Config, settings: Settings, *, retry_quarantined: bool = False
) -> dict[str, HostFacts]:
    """Observe every host once and print the plan made from those facts; return the facts.

    The rollout starts from the same facts (it observes a host again after
    each step), so what is shown is what is carried out.
    """
    facts = observe(config, settings)
    progress = recorded_progress(repo_path(settings), config)
    if retry_quarantined:
        progress = {name: replace(p, quarantined={}) for name, p in progress.items()}
    print(format_text(make_plan(config, facts, progress)))
    return facts


def print_summary(report: Report) -> None:
    print()
    print("Summary:")
    for line in report.summary:
        print(f"  {line}")
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    print("  hosts: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))
