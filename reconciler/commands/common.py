"""Options several subcommands share: the repo argument, the connection flags, the filters.

One flag set for every command that talks to hosts or reads the ledger:
``--config``, ``--ssh-key``, ``--ssh-user``, ``--parallel`` (connection),
``--buildset`` and ``--host`` (repeatable filters). ``-v``/``-q`` are added
to every subcommand by reconciler.cli.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.commands.progress import ProgressPrinter
from reconciler.config.model import Config
from reconciler.errors import RepoError, UsageError
from reconciler.settings import Settings, load_settings

__all__ = [
    "ProgressPrinter",
    "add_connection_arguments",
    "add_filter_arguments",
    "add_repo_argument",
    "add_settings_arguments",
    "check_filters",
    "positive_int",
    "repo_path",
    "require_client_key",
    "settings_from",
]


def add_repo_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "repo",
        nargs="?",
        default=None,
        help="config repo path (default: the settings' repo, else the current directory)",
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (``--parallel 0`` is refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_connection_arguments(parser: argparse.ArgumentParser, *, ssh_key: bool = True) -> None:
    """``--config``, ``--ssh-key``, ``--ssh-user``, ``--parallel``: the same on every command."""
    group = parser.add_argument_group("local settings (override the settings file)")
    group.add_argument("--config", metavar="FILE", help="the reconciler's settings file (TOML)")
    if ssh_key:
        group.add_argument("--ssh-key", metavar="PATH", help="private key used to log in to hosts")
    group.add_argument("--ssh-user", metavar="USER", help="log in as USER on every host")
    group.add_argument(
        "--parallel", type=positive_int, metavar="N", help="hosts observed at once (at least 1)"
    )


#: The name the commands used before the connection flags were shared.
add_settings_arguments = add_connection_arguments


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """``--buildset S`` and ``--host H``, each repeatable: the same on every command."""
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--buildset", action="append", metavar="S", help="only this build set (repeatable)"
    )
    group.add_argument("--host", action="append", metavar="H", help="only this host (repeatable)")


def check_filters(
    config: Config, buildsets: Sequence[str] | None, hosts: Sequence[str] | None
) -> None:
    """UsageError for a build set or host the config does not have (with the known ones)."""
    known_sets = [bs.name for bs in config.buildsets]
    for name in buildsets or ():
        if name not in known_sets:
            raise UsageError(f"no build set {name!r} (known: {', '.join(known_sets)})")
    known_hosts = [h.name for h in config.hosts]
    for name in hosts or ():
        if name not in known_hosts:
            raise UsageError(f"no host {name!r} (known: {', '.join(known_hosts)})")


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
    """The config repo directory; RepoError naming the real problem when it is not one."""
    path = Path(settings.repo).expanduser()
    if path.is_dir():
        return path
    if not path.exists():
        raise RepoError(f"config repo {path}: no such file or directory")
    parent = path.parent if path.name == "fleet.yaml" else None
    hint = f" (the directory that holds fleet.yaml: {parent})" if parent is not None else ""
    raise RepoError(f"{path} is a file, not a config repo directory{hint}")


def require_client_key(settings: Settings) -> None:
    """Fail before any host is contacted when the client key cannot be used (one clear line)."""
    from reconciler.transport.ssh import load_key  # only commands that connect need paramiko

    load_key(settings.ssh_key)
