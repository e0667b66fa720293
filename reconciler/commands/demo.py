"""`reconciler demo`: the whole product in one command, on a simulated fleet.

Copies example-repo into a scratch git repository, starts the simulated fleet
for it, commits a change (the source revision bumped to the newest commit of
the simulated upstream), applies it (source, build once per build set, test
host, soak, production in batches), prints the ledger with `git log`, and
stops the fleet, also when something fails.

With ``--keep`` the fleet is started detached (as ``reconciler sim up`` does),
so it outlives this process; the demo ends by printing the commands to look
around and the one that stops it.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.commands.apply import print_summary, show_plan
from reconciler.commands.common import ProgressPrinter
from reconciler.config.load import load_config
from reconciler.errors import RolloutFailed, SimError
from reconciler.gitutil import git, identity_env, run_git
from reconciler.ledger import Ledger, default_actor
from reconciler.lock import RepoLock
from reconciler.rollout.engine import converge
from reconciler.settings import Settings
from reconciler.sim import upstream
from reconciler.sim.example import add_packages, copy_example_repo
from reconciler.sim.fleet import SimFleet


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=SUMMARIES["demo"],
    )
    parser.add_argument(
        "--dir", type=Path, help="work directory (default: a temporary one, removed)"
    )
    parser.add_argument("--subnet", default="127.0.0", help="loopback /24 for the hosts (127.N.M)")
    parser.add_argument("--keep", action="store_true", help="leave the fleet running at the end")
    parser.set_defaults(func=run)


_SOURCE = re.compile(r"\bn\d+-[0-9a-f]{12}\b")


def _show_hosts(fleet: SimFleet) -> None:
    """One line per host, read over SSH as an administrator would."""
    print(
        f"  {'host':8} {'uname -i':9} {'kernel':12} {'userland':12} {'built from':16} "
        f"{'BE':26} packages"
    )
    for host in fleet.hosts:
        out = fleet.ssh(
            host,
            "pkg query '%n-%v' 2>/dev/null | grep -v '^pkg-' | tr '\\n' ' '; echo; "
            "uname -i; freebsd-version -k; freebsd-version -u; uname -v; "
            "bectl list -H 2>/dev/null | awk '$2 ~ /N/ {print $1}'",
        )
        packages, *lines = out.stdout.splitlines() + [""] * 6
        source = _SOURCE.search(lines[3])
        print(
            f"  {host:8} {lines[0]:9} {lines[1]:12} {lines[2]:12} "
            f"{source.group(0) if source else '?':16} {lines[4] or '(no ZFS)':26} "
            f"{packages.strip() or '-'}"
        )


def _refuse_earlier_fleet(base: Path) -> None:
    """Stop before an earlier demo's config repo in ``base`` is replaced (its fleet may run)."""
    earlier = base / "fleet"
    if not earlier.exists():
        return
    if (earlier / "fleet.json").is_file() and SimFleet.attach(earlier).running():
        raise SimError(
            f"{earlier}: an earlier demo's fleet is still running there; stop it with "
            f"'reconciler sim down --dir {earlier}', or give another --dir"
        )
    raise SimError(f"{earlier} exists (an earlier demo's fleet): remove it or give another --dir")


def _step(text: str) -> None:
    print(f"\n### {text}", flush=True)


def _kept(fleet: SimFleet, repo: Path) -> str:
    """What to type next when the fleet was left running (``--keep``)."""
    fleet_dir = shlex.quote(str(fleet.directory))
    config = shlex.quote(str(repo.resolve()))
    with_bes = [h for h in fleet.hosts if not fleet.spec(h).ufs]
    host = with_bes[0] if with_bes else fleet.hosts[0]
    return "\n".join(
        [
            f"\nDone. The simulated fleet is still running in {fleet.directory}. Look around:",
            f"  reconciler sim status --dir {fleet_dir}",
            f"  reconciler plan {config} --ssh-key {shlex.quote(str(fleet.client_key))}",
            f"  reconciler history {config}",
            f"  ssh -F {shlex.quote(str(fleet.ssh_config))} {host} "
            "'freebsd-version -ku; uname -i; bectl list -H'",
            "Stop it with:",
            f"  reconciler sim down --dir {fleet_dir}",
        ]
    )


def run(args: argparse.Namespace) -> int:
    base = args.dir or Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    repo = base / "config"
    _refuse_earlier_fleet(base)
    fleet: SimFleet | None = None
    finished = False
    try:
        _step(f"config repo: a copy of example-repo in {repo}")
        if repo.exists():
            shutil.rmtree(repo)
        copy_example_repo(repo, subnet=args.subnet)
        print(git(repo, "log", "--oneline", "-1"))

        _step("simulated fleet: one sshd per host, each in its own mount namespace")
        # Unless kept, the fleet belongs to this process and powers off when it ends.
        fleet = SimFleet.up(
            base / "fleet",
            repo=repo,
            build_seconds=3.0,
            install_seconds=1.0,
            boot_seconds=1.0,
            detached=args.keep,
        )
        _show_hosts(fleet)

        newest = upstream.commits()[-1]
        _step(
            f"the change: source.revision -> {newest[:12]}, and lab runs packages "
            "(www/nginx, security/sudo, devel/py-six@py311; a pull request, merged)"
        )
        fleet_yaml = repo / "fleet.yaml"
        text = re.sub(
            r"(?m)^(\s*revision:\s*)[0-9a-f]{40}",
            rf"\g<1>{newest}",
            fleet_yaml.read_text(encoding="utf-8"),
            count=1,
        )
        fleet_yaml.write_text(text, encoding="utf-8")
        add_packages(repo, db=False)  # built once on builder, installed into each new BE
        git(repo, "add", "-A")
        git(
            repo,
            "commit",
            "-q",
            "-m",
            f"Track stable/14 at {newest[:12]}; lab runs nginx, sudo and py-six",
            env=identity_env(),
        )
        print(git(repo, "log", "--oneline", "-2"))

        settings = Settings(repo=str(repo), ssh_key=str(fleet.client_key), work_dir=str(base))
        config = load_config(repo, git(repo, "rev-parse", "HEAD"))
        with RepoLock(repo, command="demo"):
            _step("plan")
            show_plan(config, settings)
            _step("apply: source -> build -> test -> production")
            printer = ProgressPrinter(verbose=args.verbose, quiet=args.quiet, config=config)
            try:
                report = converge(
                    config,
                    settings=settings,
                    ledger=Ledger(
                        repo, config.policy.status_branch, actor=default_actor(), command="demo"
                    ),
                    progress=printer,
                )
            finally:
                printer.close()
        print_summary(report)

        _step("the audit: git log reconciler/status")
        log = run_git(repo, ("log", "--reverse", "--format=%h %s", config.policy.status_branch))
        print(log.text.rstrip())
        _step("hosts now")
        _show_hosts(fleet)
        if not report.converged:
            raise RolloutFailed("the demo rollout did not converge; see the ledger above")
        print(_kept(fleet, repo) if args.keep else "\nDone.")
        finished = True
        return 0
    finally:
        if fleet is not None and not args.keep:
            fleet.down()
        elif fleet is not None and not finished:
            print(
                f"reconciler: the simulated fleet is left running (--keep); stop it with: "
                f"reconciler sim down --dir {shlex.quote(str(fleet.directory))}",
                file=sys.stderr,
            )
        if args.dir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
