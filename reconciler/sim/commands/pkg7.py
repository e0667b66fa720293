"""pkg(7), the bootstrapper at /usr/sbin/pkg: usr.sbin/pkg/pkg.c in freebsd-src.

When ``${LOCALBASE:-/usr/local}/sbin/pkg`` is executable it is exec'd with
the same arguments, so ``pkg -c MNT ...`` runs the *running system's* pkg.
Otherwise: ``pkg -N`` says "pkg is not installed" (exit 1, never
bootstraps); ``pkg add [-f] FILE`` bootstraps from a local package file;
``pkg bootstrap [-f] [-y]`` and any other command bootstrap from the first
enabled repository's ``Latest/pkg.pkg`` (newer pkg(7); older ones fetched
pkg.txz), but only with ASSUME_ALWAYS_YES (or ``-y``) when stdin is not a
tty: "Please set ASSUME_ALWAYS_YES=yes environment variable to be able to
bootstrap in non-interactive (stdin not being a tty)".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reconciler.sim import pkgrepos
from reconciler.sim.commands.host import Host

_NON_INTERACTIVE = (
    "The package management tool is not yet installed on your system.\n"
    "Please set ASSUME_ALWAYS_YES=yes environment variable to be able to bootstrap "
    "in non-interactive (stdin not being a tty)\n"
)


def _install(host: Host, package: Path) -> int:
    from reconciler.sim.commands import pkg as pkg8  # late: pkg(8) is the bigger module

    return pkg8.run(host, "pkg", ["add", str(package)])


def run(host: Host, prog: str, argv: list[str]) -> int:
    real = Path(os.environ.get("LOCALBASE", "/usr/local")) / "sbin" / "pkg"
    bootstrap_only = argv[:1] == ["bootstrap"]
    force = bootstrap_only and "-f" in argv[1:]
    if not force and os.access(real, os.X_OK):
        if bootstrap_only:
            print(f"pkg already bootstrapped at {real}")
            return 0
        sys.stdout.flush()
        os.execv(str(real), [str(real), *argv])  # noqa: S606 - exec, as pkg(7) does
    if argv[:1] == ["-N"]:
        print("pkg: pkg is not installed", file=sys.stderr)
        return 1
    if argv[:1] == ["add"]:
        rest = [a for a in argv[1:] if a != "-f"]
        if not rest:
            print("Path to pkg.pkg required", file=sys.stderr)
            return 1
        if not os.access(rest[0], os.R_OK):
            print(f"No such file: {rest[0]}", file=sys.stderr)
            return 1
        return _install(host, Path(rest[0]))
    yes = os.environ.get("ASSUME_ALWAYS_YES", "").lower() in ("yes", "true") or (
        bootstrap_only and "-y" in argv[1:]
    )
    if not yes:
        if not sys.stdin.isatty():
            sys.stderr.write(_NON_INTERACTIVE)
            return 1
        print("Do you want to fetch and install it now? [y/N]: ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 1
    repo = next((r for r in pkgrepos.load(Path("/")) if r.enabled and r.local), None)
    if repo is None or repo.local is None:
        print("pkg: No PACKAGESITE defined", file=sys.stderr)
        return 1
    print(f"Bootstrapping pkg from {repo.url}, please wait...", flush=True)
    package = Path(repo.local) / "Latest" / "pkg.pkg"
    if not package.is_file():
        print(
            f"pkg: Error fetching {repo.url}/Latest/pkg.pkg: File unavailable "
            "(e.g., file not found, no access)",
            file=sys.stderr,
        )
        print("A pre-built version of pkg could not be found for your system.", file=sys.stderr)
        return 1
    status = _install(host, package)
    if status != 0 or bootstrap_only:
        return status
    os.execv(str(real), [str(real), *argv])  # noqa: S606 - exec, as pkg(7) does
    return 1
