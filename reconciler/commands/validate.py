"""`reconciler validate [REPO] [--rev REV] [--format text|json]`: schema + rules, nothing applied.

Text: every problem on its own line on stdout, ``path:line:col: message (hint: ...)``,
exit 1; or one summary line, exit 0. JSON: one object
``{"valid", "problems", "buildsets"}`` whichever the outcome (exit code as in text).
A repo or revision that cannot be read is an error (exit 1) in both formats.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.config.buildid import build_id, short
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import ConfigInvalid, Problem


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help=SUMMARIES["validate"],
        description="Check a config repo (schema + rules); never touches a host.",
    )
    parser.add_argument("repo", nargs="?", default=".", help="config repo directory (default: .)")
    parser.add_argument("--rev", help="validate this commit instead of the files on disk")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(func=run)


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "line": problem.line,
        "column": problem.column,
        "message": problem.message,
        "hint": problem.hint,
    }


def summary(config: Config) -> str:
    """``ok: 2 build sets, 6 hosts; lab build 3f2a9c1e0b7d, db build ...``"""
    sets = len(config.buildsets)
    hosts = len(config.hosts)
    builds = ", ".join(f"{bs.name} build {short(build_id(config, bs))}" for bs in config.buildsets)
    where = f" at {config.commit[:12]}" if config.commit else ""
    return (
        f"ok{where}: {sets} build set{'s' if sets != 1 else ''}, "
        f"{hosts} host{'s' if hosts != 1 else ''}; {builds}"
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.repo, args.rev)
    except ConfigInvalid as exc:
        if args.format == "json":
            body = {
                "valid": False,
                "problems": [_problem_json(p) for p in exc.problems],
                "buildsets": [],
            }
            print(json.dumps(body, indent=2))
        else:
            for problem in exc.problems:
                print(problem)
            print(f"reconciler: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        body = {
            "valid": True,
            "commit": config.commit,
            "problems": [],
            "buildsets": [
                {
                    "name": bs.name,
                    "build_id": build_id(config, bs),
                    "hosts": [h.name for h in bs.hosts],
                }
                for bs in config.buildsets
            ],
        }
        print(json.dumps(body, indent=2))
    else:
        print(summary(config))
    return 0
