"""Options several subcommands share: the repo argument and the local settings."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from reconciler.rollout.engine_types import Event
from reconciler.settings import Settings, load_settings


def add_repo_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "repo",
        nargs="?",
        default=None,
        help="config repo path (default: the settings' repo, else the current directory)",
    )


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("local settings (override the settings file)")
    group.add_argument("--config", metavar="FILE", help="the reconciler's settings file (TOML)")
    group.add_argument("--ssh-key", metavar="PATH", help="private key used to log in to hosts")
    group.add_argument("--ssh-user", metavar="USER", help="log in as USER on every host")
    group.add_argument("--parallel", type=int, metavar="N", help="hosts observed at once")


def settings_from(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    overrides: dict[str, Any] = {
        "ssh_key": getattr(args, "ssh_key", None),
        "ssh_user": getattr(args, "ssh_user", None),
        "parallel": getattr(args, "parallel", None),
    }
    if getattr(args, "repo", None):
        overrides["repo"] = args.repo
    return settings.with_overrides(**overrides)


def repo_path(settings: Settings) -> Path:
    return Path(settings.repo).expanduser()


class ProgressPrinter:
    """Progress events as one line each: time, build set, host, what happened."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        where = "/".join(part for part in (event.buildset, event.host) if part)
        marker = {"stage": "==", "warning": "!!", "build": ">>", "install": ">>"}.get(
            event.kind, "  "
        )
        line = (
            f"{time.strftime('%H:%M:%S')} {marker} {where + ': ' if where else ''}{event.message}"
        )
        print(line, file=self.stream, flush=True)
