"""What the simulated pkg(8) does to a root: solve a request, print it, apply it.

Follows pkg's own sequence and words (src/install.c, upgrade.c, delete.c,
event.c, utils.c; libpkg/pkg_jobs.c, pkg_add.c, pkg_delete.c, scripts.c):
"Checking integrity... done (0 conflicting)", "The following N package(s)
will be affected", "New packages to be INSTALLED:", "Installed packages to be
UPGRADED:", "[i/n] Installing name-version...", "[i/n] Extracting
name-version: 100%". Dependencies are installed first and marked automatic.
pkg applies one package after another, not as one transaction: a package
that fails midway leaves the ones before it installed (a boot environment
is what makes the whole set atomic).

Scripts (``pre-install``, ``post-install``, ``pre-deinstall``) run with
/bin/sh, ``set -- name-version`` first, PKG_NAME, PKG_PREFIX and
PKG_ROOTDIR in the environment; under ``-c`` inside the chroot
(PKG_CHROOTED=true), otherwise on the running system (libpkg/scripts.c).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.sim import pkgdb, pkgfile

#: The exit status of a failed pkg command (EXIT_FAILURE).
FAILED = 1


class PkgFailure(Exception):
    """The job stops here; the message is pkg's (already without the ``pkg: `` prefix)."""


@dataclass
class Target:
    """The root pkg acts on and how (see pkgrepos.py)."""

    root: Path
    chroot: bool
    fail_at: str | None = None  # the pkg-install-fails fault: a name, an origin or "*"
    seconds: float = 0.0  # how long extracting one package takes

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def rootdir(self) -> str:
        return "/" if self.chroot or str(self.root) == "/" else str(self.root)


@dataclass
class Job:
    kind: str  # install, upgrade, delete
    entry: dict[str, Any]  # catalogue entry or installed package as a manifest-like dict
    old_version: str = ""
    automatic: bool = False
    source: Path | None = None  # the package file to install
    repository: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _key(version: str) -> tuple[int, int, list[tuple[int, str]]]:
    main, _, epoch = version.partition(",")
    main, _, revision = main.partition("_")
    parts = [
        (int(tok), "") if tok.isdigit() else (-1, tok) for tok in re.findall(r"\d+|[A-Za-z]+", main)
    ]
    return (int(epoch or 0), int(revision or 0) if revision.isdigit() else 0, parts)


def newer(a: str, b: str) -> bool:
    """Whether version ``a`` is newer than ``b`` (epoch, then version, then revision)."""
    ka, kb = _key(a), _key(b)
    return (ka[0], ka[2], ka[1]) > (kb[0], kb[2], kb[1])


def print_plan(jobs: list[Job], *, delete: bool = False) -> None:
    print("Checking integrity... done (0 conflicting)")
    if delete:
        print(
            f"Deinstallation has been requested for the following {len(jobs)} packages "
            "(of 0 packages in the universe):\n"
        )
    else:
        print(f"The following {len(jobs)} package(s) will be affected (of 0 checked):\n")
    titles = {
        "install": "New packages to be INSTALLED:",
        "upgrade": "Installed packages to be UPGRADED:",
        "delete": "Installed packages to be REMOVED:",
    }
    for kind, title in titles.items():
        mine = [j for j in jobs if j.kind == kind]
        if not mine:
            continue
        print(title)
        for job in mine:
            name, version = job.entry["name"], job.entry["version"]
            repo = f" [{job.repository}]" if job.repository else ""
            if kind == "upgrade":
                print(f"\t{name}: {job.old_version} -> {version}{repo}")
            else:
                print(f"\t{name}: {version}{repo}")
        print()
    for kind, word in (("delete", "removed"), ("install", "installed"), ("upgrade", "upgraded")):
        count = sum(1 for j in jobs if j.kind == kind)
        if count:
            print(f"Number of packages to be {word}: {count}")
    print(flush=True)


def run_script(target: Target, manifest: dict[str, Any], phase: str, upgrade: bool) -> None:
    script = (manifest.get("scripts") or {}).get(phase)
    if not script:
        return
    env = {k: v for k, v in os.environ.items()}
    env |= {
        "PKG_NAME": manifest["name"],
        "PKG_PREFIX": manifest.get("prefix", "/usr/local"),
        "PKG_ROOTDIR": target.rootdir,
    }
    if upgrade:
        env["PKG_UPGRADE"] = "true"
    text = f"set -- {manifest['name']}-{manifest['version']}\n{script}"
    if target.chroot:
        env["PKG_CHROOTED"] = "true"
        argv = ["/usr/sbin/chroot", str(target.root), "/bin/sh", "-c", text]
    else:
        argv = ["/bin/sh", "-c", text]
    sys.stdout.flush()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise PkgFailure(f"{phase.upper()} script failed")


def _fails_here(target: Target, manifest: dict[str, Any], index: int, total: int) -> bool:
    if target.fail_at is None:
        return False
    if target.fail_at == "*":
        return index == min(2, total)  # midway: the second package (the only one if alone)
    return target.fail_at in (manifest["name"], manifest["origin"])


def install(
    target: Target, conn: sqlite3.Connection, job: Job, index: int, total: int, abi: str
) -> None:
    """Install or upgrade one package from ``job.source`` into the target root."""
    assert job.source is not None
    manifest, files = pkgfile.read_package(job.source)
    name, version = manifest["name"], manifest["version"]
    if manifest.get("abi") not in (abi, "*"):
        raise PkgFailure(f"wrong architecture: {manifest.get('abi')} instead of {abi}")
    step = f"[{index}/{total}]"
    upgrade = job.kind == "upgrade"
    if upgrade:
        print(f"{step} Upgrading {name} from {job.old_version} to {version}...", flush=True)
    else:
        print(f"{step} Installing {name}-{version}...", flush=True)
    run_script(target, manifest, "pre-install", upgrade)
    old = {p.name: p for p in pkgdb.all_installed(conn)}.get(name)
    if old is not None:
        for stale in set(old.files) - set(files):
            target.path(stale).unlink(missing_ok=True)
    for written, (file_path, (data, mode)) in enumerate(sorted(files.items())):
        if _fails_here(target, manifest, index, total) and written == len(files) // 2:
            raise PkgFailure(f"Failed to write {file_path}: Input/output error")
        dest = target.path(file_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".pkgtemp.{dest.name}")
        tmp.write_bytes(data)
        tmp.chmod(mode)
        os.replace(tmp, dest)
    if target.seconds:
        time.sleep(target.seconds)
    automatic = (
        old.automatic if old is not None and not job.extra.get("requested") else job.automatic
    )
    digests = {p: d for p, d in (manifest.get("files") or {}).items()}
    pkgdb.register(conn, manifest, digests, automatic=automatic, repository=job.repository)
    conn.commit()
    print(f"{step} Extracting {name}-{version}: 100%", flush=True)
    run_script(target, manifest, "post-install", upgrade)


def delete(target: Target, conn: sqlite3.Connection, job: Job, index: int, total: int) -> None:
    entry = job.entry
    step = f"[{index}/{total}]"
    print(f"{step} Deinstalling {entry['name']}-{entry['version']}...", flush=True)
    run_script(target, entry, "pre-deinstall", False)
    for file_path in entry.get("files_list", []):
        target.path(file_path).unlink(missing_ok=True)
    pkgdb.unregister(conn, entry["name"])
    conn.commit()
    print(f"{step} Deleting files for {entry['name']}-{entry['version']}: 100%", flush=True)


def as_entry(pkg: pkgdb.Installed) -> dict[str, Any]:
    """An installed package in the shape of a manifest (for printing and deinstalling)."""
    return {
        "name": pkg.name,
        "origin": pkg.origin,
        "version": pkg.version,
        "prefix": pkg.prefix,
        "files_list": pkg.files,
    }
