"""The simulated pkg(8)'s commands that change a root: install, upgrade, delete, set, add, repo.

Behaviour and sources: reconciler/sim/commands/pkg.py and docs/freebsd-commands.md.
"""

from __future__ import annotations

import getopt
import sys
from pathlib import Path
from typing import Any

from reconciler.sim import pkgdb, pkgfile, pkgjobs, pkgsign
from reconciler.sim.pkgctx import Pkg
from reconciler.sim.pkgctx import err as _err
from reconciler.sim.pkgjobs import FAILED, Job, PkgFailure


def install(pkg: Pkg, args: list[str]) -> int:
    opts, patterns = getopt.gnu_getopt(args, "AfInqRr:Uy", ["automatic", "yes"])
    flags = dict(opts)
    if "-y" in flags or "--yes" in flags:
        pkg.yes = True
    if not patterns:
        print(
            "Usage: pkg install [-AfInFMqRUy] [-r reponame] [-Cgix] <pkg-name> ...", file=sys.stderr
        )
        return FAILED
    catalogue = pkg.update(flags.get("-r"), "-q" in flags) if "-U" not in flags else None
    if catalogue is None:
        if "-U" not in flags:
            return FAILED
        catalogue = pkg.update(flags.get("-r"), quiet=True) or []
    wanted: list[dict[str, Any]] = []
    requested: set[str] = set()
    missing = False
    for pattern in patterns:
        found = [e for e in catalogue if pkgdb.matches(e, pattern)]
        if not found:
            _err(
                f"No packages available to install matching '{pattern}' have been found in "
                "the repositories"
            )
            missing = True
            continue
        best: dict[str, dict[str, Any]] = {}
        for entry in found:  # catalogue order: higher priority repositories first
            best.setdefault(entry["name"], entry)
        wanted += best.values()
        requested |= set(best)
    if missing:
        return FAILED
    try:
        jobs = pkg.solve(catalogue, wanted, requested)
    except PkgFailure as exc:
        _err(str(exc))
        return FAILED
    conn = pkg.db(create=True)
    if not jobs:
        for entry in wanted:
            for old in pkgdb.all_installed(conn):
                ask = f"{old.name}-{old.version} is already installed as automatic. Mark as"
                if (
                    old.name == entry["name"]
                    and old.automatic
                    and "-A" not in flags
                    and pkg.confirm(f"{ask} non-automatic?")
                ):
                    pkgdb.set_automatic(conn, old.name, False)
                    conn.commit()
        print("Checking integrity... done (0 conflicting)")
        print("The most recent versions of packages are already installed")
        return 0
    for job in jobs:
        if "-A" in flags:
            job.automatic = True
    pkgjobs.print_plan(jobs)
    if "-n" in flags or not pkg.confirm("\nProceed with this action?"):
        return 0 if "-n" in flags else FAILED
    return pkg.apply(jobs, conn)


def upgrade(pkg: Pkg, args: list[str]) -> int:
    opts, patterns = getopt.gnu_getopt(args, "fInqr:Uy", ["yes"])
    flags = dict(opts)
    if "-y" in flags or "--yes" in flags:
        pkg.yes = True
    catalogue = pkg.update(flags.get("-r"), "-q" in flags)
    if catalogue is None:
        return FAILED
    wanted = []
    installed = pkg.installed()
    for old in installed:
        if patterns and not any(pkgdb.matches(old, p) for p in patterns):
            continue
        offer = next((e for e in catalogue if e["name"] == old.name), None)
        if offer is not None and pkgjobs.newer(offer["version"], old.version):
            wanted.append(offer)
    requested = {p.name for p in installed if not p.automatic}
    jobs = pkg.solve(catalogue, wanted, requested)
    print(f"Checking for upgrades ({len(installed)} candidates): 100%")
    if not jobs:
        print("Checking integrity... done (0 conflicting)")
        print("Your packages are up to date.")
        return 0
    pkgjobs.print_plan(jobs)
    if "-n" in flags or not pkg.confirm("\nProceed with this action?"):
        return 0 if "-n" in flags else FAILED
    return pkg.apply(jobs, pkg.db(create=True))


def delete(pkg: Pkg, args: list[str], auto: bool = False) -> int:
    opts, patterns = getopt.gnu_getopt(args, "afnqRy", ["yes"])
    flags = dict(opts)
    if "-y" in flags or "--yes" in flags:
        pkg.yes = True
    conn = pkg.db()
    installed = pkgdb.all_installed(conn) if conn is not None else []
    if conn is None or not installed:
        print("pkg: No packages installed.  Nothing to do!", file=sys.stderr)
        return 0
    chosen: dict[str, pkgdb.Installed] = {}
    if auto:
        needed = {d[0] for p in installed for d in p.deps}
        chosen = {p.name: p for p in installed if p.automatic and p.name not in needed}
    else:
        for pattern in patterns:
            found = [p for p in installed if pkgdb.matches(p, pattern) or "-a" in flags]
            if not found:
                _err(f"No packages matched for pattern '{pattern}'")
                return FAILED
            chosen |= {p.name: p for p in found}
        if "-f" not in flags:  # whatever depends on a removed package goes with it
            growing = True
            while growing:
                growing = False
                for p in installed:
                    if p.name not in chosen and any(d[0] in chosen for d in p.deps):
                        chosen[p.name] = p
                        growing = True
    if not chosen:
        print("Checking integrity... done (0 conflicting)\nNothing to do.")
        return 0
    jobs = [
        Job("delete", pkgjobs.as_entry(p)) for p in sorted(chosen.values(), key=lambda p: p.name)
    ]
    pkgjobs.print_plan(jobs, delete=True)
    if "-n" in flags or not pkg.confirm("\nProceed with deinstalling packages?"):
        return 0 if "-n" in flags else FAILED
    return pkg.apply(jobs, conn)


def set_(pkg: Pkg, args: list[str]) -> int:
    opts, patterns = getopt.gnu_getopt(args, "A:gixy")
    flags = dict(opts)
    if "-y" in flags:
        pkg.yes = True
    if flags.get("-A") not in ("0", "1") or not patterns:
        print(
            "Usage: pkg set [-a] [-A [01]] [-o <oldorigin>:<neworigin>] [-y] [-Cgix] <pkg-name>",
            file=sys.stderr,
        )
        return FAILED
    conn = pkg.db()
    status = 0
    for pattern in patterns:
        found = [
            p for p in (pkgdb.all_installed(conn) if conn else []) if pkgdb.matches(p, pattern)
        ]
        if not found:
            _err(f"No package(s) matching {pattern}")
            status = FAILED
        for p in found:
            word = (
                "automatically installed" if flags["-A"] == "1" else "not automatically installed"
            )
            if pkg.confirm(f"Mark {p.name}-{p.version} as {word}?"):
                assert conn is not None
                pkgdb.set_automatic(conn, p.name, flags["-A"] == "1")
    if conn is not None:
        conn.commit()
    return status


def add(pkg: Pkg, args: list[str]) -> int:
    opts, files = getopt.gnu_getopt(args, "AfIMq")
    flags = dict(opts)
    if len(files) != 1:
        print("Usage: pkg add [-IAfqM] <pkg-name> ...", file=sys.stderr)
        return FAILED
    source = Path(files[0])
    if pkg.mode == "chroot":
        source = pkg.root / str(source).lstrip("/")
    if not source.is_file():
        _err(f"{files[0]}: No such file or directory")
        return FAILED
    manifest, _ = pkgfile.read_package(source)
    conn = pkg.db(create=True)
    old = {p.name: p for p in pkgdb.all_installed(conn)}.get(manifest["name"])
    if old is not None and old.version == manifest["version"] and "-f" not in flags:
        print(f"the most recent version of {old.name}-{old.version} is already installed")
        return 0
    kind = "upgrade" if old is not None else "install"
    job = Job(
        kind,
        manifest,
        old_version=old.version if old else "",
        automatic="-A" in flags,
        source=source,
    )
    return pkg.apply([job], conn)


def repo(args: list[str]) -> int:
    _, rest = getopt.gnu_getopt(args, "hlqso:m:", ["output-dir="])
    if not rest:
        print(
            "Usage: pkg repo [-hlqs] [-m metafile] [-o output-dir] <repo-path> [<rsa-key>]",
            file=sys.stderr,
        )
        return FAILED
    repo = Path(rest[0])
    # pkg-repo(8): an optional RSA key, "rsa:" prefixed or not (src/repo.c); see pkgsign.py.
    key = Path(rest[1].removeprefix("rsa:")) if len(rest) > 1 else None
    print(f"Creating repository in {repo}:  done", flush=True)
    try:
        pkgfile.write_repo(repo, key)
    except pkgsign.SignError as exc:
        _err(str(exc))
        return FAILED
    print("Packing files for repository:  done", flush=True)
    return 0
