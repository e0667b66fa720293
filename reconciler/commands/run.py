"""`reconciler run`: the daemon (poll + watch, reconcile, resume).

    reconciler run --config /usr/local/etc/reconciler.toml [--once] [--log-format json]

Every setting of the file can be overridden here (``--repo``, ``--branch``,
``--work-dir``, ``--poll-interval`` ...). Exit status: 0 after SIGTERM at a
safe point (or, with ``--once``, when every host converged); 1 when another
reconciler holds the repo, the settings are wrong, or ``--once`` did not
converge.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.daemon import run_daemon, setup_logging
from reconciler.errors import SettingsError
from reconciler.settings import load_settings


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help=SUMMARIES["run"],
        description=(
            "Keep the fleet on the config repo's tracked branch: apply every new commit, "
            "re-check converged hosts every poll, record outcomes in the ledger."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="settings file (TOML)")
    parser.add_argument("--once", action="store_true", help="one pass, then exit (cron, CI)")
    parser.add_argument("--log-format", choices=("text", "json"), help="log line format")
    parser.add_argument("--repo", help="config repo: local path or URL")
    parser.add_argument("--branch", help="tracked branch")
    parser.add_argument("--work-dir", help="where the clone, lock and state live")
    parser.add_argument("--ssh-key", help="private key for the hosts")
    parser.add_argument("--poll-interval", type=_seconds, metavar="SECONDS")
    signing = parser.add_mutually_exclusive_group()
    signing.add_argument(
        "--require-signed-commits",
        dest="require_signed_commits",
        action="store_const",
        const=True,
        help="apply only commits signed by an allowed signer",
    )
    signing.add_argument(
        "--no-require-signed-commits",
        dest="require_signed_commits",
        action="store_const",
        const=False,
    )
    parser.add_argument("--allowed-signers", metavar="FILE", help="ssh-keygen allowed signers file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config).with_overrides(
        repo=args.repo,
        branch=args.branch,
        work_dir=args.work_dir,
        ssh_key=args.ssh_key,
        poll_interval=args.poll_interval,
        require_signed_commits=args.require_signed_commits,
        allowed_signers=args.allowed_signers,
        log_format=args.log_format,
    )
    if settings.require_signed_commits and not settings.allowed_signers:
        raise SettingsError(
            "require_signed_commits needs allowed_signers: a file outside the config repo "
            "(ssh-keygen ALLOWED SIGNERS format; may be empty when only GPG signatures are used)"
        )
    verbose = int(getattr(args, "verbose", 0) or 0)
    setup_logging(settings.log_format, level=logging.DEBUG if verbose else logging.INFO)
    return run_daemon(settings, once=args.once)
