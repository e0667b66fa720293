"""The simulated pkg(8)'s view of one invocation: its root, its repositories, its answers.

See reconciler/sim/commands/pkg.py for the command and reconciler/sim/pkgrepos.py
for what ``-c`` and ``-r`` change.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from reconciler.sim import kernel, pkgdb, pkgfile, pkgjobs, pkgrepos
from reconciler.sim.commands.host import Host
from reconciler.sim.pkgjobs import FAILED, Job, PkgFailure, Target


def err(message: str) -> None:
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

    def pubkey(self, repo: pkgrepos.Repo) -> tuple[str, Path] | None:
        """(configured path, the file this pkg reads) for a pubkey-signed repository."""
        if repo.signature_type != "pubkey":
            return None
        path = Path(repo.pubkey)
        inside = self.root / repo.pubkey.lstrip("/") if self.mode == "chroot" else path
        return repo.pubkey, inside

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
            err(f"Repository {only} does not exist or is disabled")
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
                catalogue = pkgfile.read_catalogue(directory, repo.url, self.pubkey(repo))
            except pkgfile.RepoError as exc:
                err(str(exc))
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
            err(str(exc))
            return FAILED
        return 0

    def solve(
        self, catalogue: list[dict[str, Any]], wanted: list[dict[str, Any]], requested: set[str]
    ) -> list[Job]:
        """Jobs for ``wanted`` entries and their dependencies, dependencies first."""
        installed = {p.name: p for p in self.installed()}
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

    def installed(self) -> list[pkgdb.Installed]:
        conn = self.db()
        return pkgdb.all_installed(conn) if conn is not None else []
