"""pkg(8) (``/usr/local/sbin/pkg``, installed by the ports-mgmt/pkg package), simulated.

Global options as src/main.c: ``-N`` (activation test: "N packages
installed" on stderr, or "package database non-existent"), ``-c DIR`` and
``-r DIR`` (mutually exclusive; see reconciler/sim/pkgrepos.py for what
each changes), ``-o NAME=VALUE`` (ASSUME_ALWAYS_YES). Commands: update,
install, upgrade, delete/remove, autoremove, query, info, set -A, add, repo.
Confirmation prompts need ``-y`` or ASSUME_ALWAYS_YES; with stdin not a tty
the answer is no. ``install``/``upgrade`` update the catalogues first
(``-U`` skips it) and stop when one cannot be updated: on a simulated host
the stock FreeBSD repository has no network, so ``-r NAME`` matters as it
does offline. Fault ``pkg-install-fails`` (value: a package name or origin,
or bare for the second package of a job) fails extraction midway.
"""

from __future__ import annotations

import getopt
import os
import sys
from pathlib import Path
from typing import Any

from reconciler.sim import kernel, pkgdb, pkgfile, pkgjobs, pkgrepos
from reconciler.sim.commands import pkgquery
from reconciler.sim.commands.host import Host
from reconciler.sim.pkgjobs import FAILED, Job, PkgFailure, Target

VERSION = "1.21.3"


def _err(message: str) -> None:
    print(f"pkg: {message}", file=sys.stderr, flush=True)


class Pkg:
    def __init__(self, host: Host, root: Path, mode: str, options: dict[str, str]) -> None:
        self.host = host
        self.root = root
        self.mode = mode  # "", "chroot" or "rootdir"
        self.yes = options.get(
            "ASSUME_ALWAYS_YES", os.environ.get("ASSUME_ALWAYS_YES", "")
        ).lower() in ("yes", "true", "1")
        fault = host.fault("pkg-install-fails")
        _, timings = host.fleet()
        self.target = Target(
            root,
            mode == "chroot",
            None if fault is None else ("*" if fault is True else str(fault)),
            timings.install_seconds / 8 * host.slow_factor(),
        )

    def abi(self) -> str:
        world = kernel.read(self.root / kernel.WORLD_FILE) or {}
        major = world.get("version", "14").split(".")[0] or "14"
        return f"FreeBSD:{major}:amd64"

    def repos(self, only: str | None) -> list[pkgrepos.Repo]:
        conf_root = self.root if self.mode == "chroot" else Path("/")
        found = [r for r in pkgrepos.load(conf_root) if r.enabled]
        return [r for r in found if only is None or r.name == only]

    def repo_dir(self, repo: pkgrepos.Repo) -> Path | None:
        local = repo.local
        if local is None:
            return None
        return self.root / local.lstrip("/") if self.mode == "chroot" else Path(local)

    def confirm(self, question: str) -> bool:
        if self.yes:
            return True
        print(f"{question} [y/N]: ", end="", flush=True)
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    # -- catalogues -----------------------------------------------------------
    def update(self, only: str | None, quiet: bool = False) -> list[dict[str, Any]] | None:
        """Every enabled repository's packages (best repository first); None when one failed."""
        repos = self.repos(only)
        if only is not None and not repos:
            _err(f"Repository {only} does not exist or is disabled")
            return None
        entries: list[dict[str, Any]] = []
        failed = False
        for repo in repos:
            if not quiet:
                print(f"Updating {repo.name} repository catalogue...", flush=True)
            directory = self.repo_dir(repo)
            try:
                if directory is None:
                    raise pkgfile.RepoError(f"{repo.url}/meta.conf: No address record")
                catalogue = pkgfile.read_catalogue(directory, repo.url)
            except pkgfile.RepoError as exc:
                _err(str(exc))
                print(f"Unable to update repository {repo.name}", flush=True)
                failed = True
                continue
            if not quiet:
                print(f"{repo.name} repository is up to date.", flush=True)
            for entry in catalogue:
                entry["_repo"] = repo.name
                entry["_file"] = directory / entry["repopath"]
            entries += catalogue
        if failed:
            print("Error updating repositories!", flush=True)
            return None
        if not quiet:
            print("All repositories are up to date.", flush=True)
        return entries

    # -- commands -------------------------------------------------------------
    def db(self, create: bool = False) -> Any:
        return pkgdb.connect(self.root, create=create)

    def apply(self, jobs: list[Job], conn: Any) -> int:
        total = len(jobs)
        try:
            for index, job in enumerate(jobs, start=1):
                if job.kind == "delete":
                    pkgjobs.delete(self.target, conn, job, index, total)
                else:
                    pkgjobs.install(self.target, conn, job, index, total, self.abi())
        except PkgFailure as exc:
            _err(str(exc))
            return FAILED
        return 0

    def solve(
        self, catalogue: list[dict[str, Any]], wanted: list[dict[str, Any]], requested: set[str]
    ) -> list[Job]:
        """Jobs for ``wanted`` entries and their dependencies, dependencies first."""
        installed = {p.name: p for p in self._installed()}
        by_name: dict[str, dict[str, Any]] = {}
        for entry in catalogue:
            by_name.setdefault(entry["name"], entry)
        order: list[dict[str, Any]] = []
        seen: set[str] = set()

        def visit(entry: dict[str, Any]) -> None:
            if entry["name"] in seen:
                return
            seen.add(entry["name"])
            for dep_name in sorted(entry.get("deps") or {}):
                dep = by_name.get(dep_name)
                if dep is None:
                    raise PkgFailure(f"Missing dependency '{dep_name}' of {entry['name']}")
                visit(dep)
            order.append(entry)

        for entry in wanted:
            visit(entry)
        jobs = []
        for entry in order:
            old = installed.get(entry["name"])
            is_requested = entry["name"] in requested
            common = {
                "entry": entry,
                "source": entry["_file"],
                "repository": entry["_repo"],
                "automatic": not is_requested,
                "extra": {"requested": is_requested},
            }
            if old is None:
                jobs.append(Job("install", **common))
            elif old.version != entry["version"]:
                jobs.append(Job("upgrade", old_version=old.version, **common))
        return jobs

    def _installed(self) -> list[pkgdb.Installed]:
        conn = self.db()
        return pkgdb.all_installed(conn) if conn is not None else []


def _install(pkg: Pkg, args: list[str]) -> int:
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


def _upgrade(pkg: Pkg, args: list[str]) -> int:
    opts, patterns = getopt.gnu_getopt(args, "fInqr:Uy", ["yes"])
    flags = dict(opts)
    if "-y" in flags or "--yes" in flags:
        pkg.yes = True
    catalogue = pkg.update(flags.get("-r"), "-q" in flags)
    if catalogue is None:
        return FAILED
    wanted = []
    installed = pkg._installed()
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


def _delete(pkg: Pkg, args: list[str], auto: bool = False) -> int:
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


def _set(pkg: Pkg, args: list[str]) -> int:
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


def _add(pkg: Pkg, args: list[str]) -> int:
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


def _repo(args: list[str]) -> int:
    _, rest = getopt.gnu_getopt(args, "hlqso:m:", ["output-dir="])
    if not rest:
        print(
            "Usage: pkg repo [-hlqs] [-m metafile] [-o output-dir] <repo-path> [<rsa-key>]",
            file=sys.stderr,
        )
        return FAILED
    repo = Path(rest[0])
    print(f"Creating repository in {repo}:  done", flush=True)
    pkgfile.write_repo(repo)
    print("Packing files for repository:  done", flush=True)
    return 0


def run(host: Host, prog: str, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "c:r:j:C:R:o:Nvdl46", ["chroot=", "rootdir="])
    except getopt.GetoptError as exc:
        _err(str(exc))
        return FAILED
    flags: dict[str, str] = {}
    options: dict[str, str] = {}
    for opt, val in opts:
        if opt == "-o":
            key, _, value = val.partition("=")
            options[key] = value
        else:
            flags[{"--chroot": "-c", "--rootdir": "-r"}.get(opt, opt)] = val
    if "-c" in flags and "-r" in flags:
        _err("-c and -r are mutually exclusive")
        return FAILED
    if "-v" in flags and not rest:
        print(VERSION)
        return 0
    root, mode = Path("/"), ""
    for flag, name in (("-c", "chroot"), ("-r", "rootdir")):
        if flag in flags:
            root, mode = Path(flags[flag]), name
            if not root.is_dir():
                what = "chroot failed" if flag == "-c" else "Invalid rootdir"
                _err(f"{what}: No such file or directory")
                return FAILED
    pkg = Pkg(host, root, mode, options)
    if "-N" in flags:
        conn = pkg.db()
        if conn is None:
            _err("package database non-existent")
            return FAILED
        count = len(pkgdb.all_installed(conn))
        if count == 0:
            _err("no packages registered")
            return FAILED
        if not rest:
            _err(f"{count} packages installed")
            return 0
    if not rest:
        print(
            "Usage: pkg [-v] [-d] [-l] [-N] [-j <jail name or id>|-c <chroot path>|-r <rootdir>] "
            "[-C <configuration file>] [-R <repo config dir>] [-o var=value] [-4|-6] "
            "<command> [<args>]",
            file=sys.stderr,
        )
        return FAILED
    command, args = rest[0], rest[1:]
    try:
        if command == "install":
            return _install(pkg, args)
        if command == "upgrade":
            return _upgrade(pkg, args)
        if command in ("delete", "remove"):
            return _delete(pkg, args)
        if command == "autoremove":
            return _delete(pkg, args, auto=True)
        if command == "update":
            opts2, _ = getopt.gnu_getopt(args, "fqr:")
            return (
                0 if pkg.update(dict(opts2).get("-r"), "-q" in dict(opts2)) is not None else FAILED
            )
        if command == "query":
            return pkgquery.query(pkg.db(), args)
        if command == "info":
            return pkgquery.info(pkg.db(), args)
        if command == "set":
            return _set(pkg, args)
        if command == "add":
            return _add(pkg, args)
        if command == "repo":
            return _repo(args)
    except getopt.GetoptError as exc:
        _err(str(exc))
        return FAILED
    _err(f"unknown command: {command}")
    return FAILED
