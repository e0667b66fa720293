"""The simulated ``poudriere bulk``'s build loop, repository and commit (see poudrierebulk.py)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from reconciler.sim import kernel, pkgfile, pkgsign, portstree
from reconciler.sim.poudrierebulk import (
    Poudriere,
    _content,
    _make_conf,
    _manifest,
    _options_dir,
    port_options,
)


def _summary(p: Poudriere, ctx: dict[str, Any], status: str, stats: dict[str, int]) -> None:
    prefix = f"[{p.elapsed()}] "
    done = sum(stats[k] for k in ("built", "failed", "skipped", "ignored", "inspected", "fetched"))
    print(
        f"{prefix}[{ctx['master']}] [{ctx['buildname']}] [{status}] Time: {p.elapsed()}\n"
        f"{' ' * len(prefix)}Queued: {stats['queued']} Inspected: {stats['inspected']} "
        f"Ignored: {stats['ignored']} Built: {stats['built']} Failed: {stats['failed']} "
        f"Skipped: {stats['skipped']} Fetched: {stats['fetched']} "
        f"Remaining: {stats['queued'] - done}",
        flush=True,
    )


def _failing(p: Poudriere, info: portstree.PortInfo) -> bool:
    fault = p.host.fault("port-build-fails")
    if fault is None:
        return False
    wanted = "www/nginx" if fault is True else str(fault)
    return wanted in (info.origin, info.spec, info.name, info.pkgname)


def _job(p: Poudriere, since: float, text: str) -> None:
    p.msg(f"[01] [{p.elapsed(since)}] {text}")


def _stash(p: Poudriere, packages: Path) -> Path:
    """stash_packages: a .latest to build on, and a .building copy of it (hard links)."""
    if not (packages / ".latest").is_symlink():
        p.msg("Converting package repository to new format")
        real = f".real_{int(time.time())}"
        (packages / real).mkdir(parents=True)
        (packages / ".latest").symlink_to(real)
    building = packages / ".building"
    if building.is_dir():
        p.warn(f"Using packages from previously failed, or uncommitted, build: {building}")
        return building
    p.msg("Stashing existing package repository")
    shutil.copytree(packages / ".latest", building, copy_function=os.link, symlinks=True)
    return building


def _commit(p: Poudriere, packages: Path, building: Path) -> None:
    epoch = int(time.time())
    while (packages / f".real_{epoch}").exists():
        epoch += 1
    new = f".real_{epoch}"
    p.msg(f"Committing packages to repository: {packages}/{new} via .latest symlink")
    for item in building.iterdir():
        top = packages / item.name
        if not item.name.startswith(".") and not top.is_symlink():
            if top.exists():
                top.unlink() if top.is_file() else shutil.rmtree(top)
            top.symlink_to(f".latest/{item.name}")
    old = (packages / ".latest").resolve()
    building.rename(packages / new)
    (packages / ".latest_new").symlink_to(new)
    os.replace(packages / ".latest_new", packages / ".latest")
    p.msg("Removing old packages")
    if old != (packages / new) and old.is_dir() and p.conf.get("KEEP_OLD_PACKAGES") != "yes":
        shutil.rmtree(old, ignore_errors=True)


def run_bulk(p: Poudriere, origins: list[str], ctx: dict[str, Any]) -> int:
    tree_mnt = Path(p.pget(ctx["tree"])("mnt"))
    jail_mnt = Path(p.jget(ctx["jail"])("mnt"))
    world = kernel.read(jail_mnt / kernel.WORLD_FILE) or {}
    abi = f"FreeBSD:{world.get('version', '14').split('.')[0]}:amd64"
    packages = p.data / "packages" / ctx["master"]
    logs = p.data / "logs" / "bulk" / ctx["master"] / ctx["buildname"]
    (logs / "logs" / "errors").mkdir(parents=True, exist_ok=True)
    latest_log = logs.parent / "latest"
    latest_log.unlink(missing_ok=True)
    latest_log.symlink_to(ctx["buildname"])
    p.msg_n("Creating the reference jail...")
    print(" done", flush=True)
    p.msg(f"Mounting system devices for {ctx['master']}")
    p.msg(f"Mounting ports from: {tree_mnt}")
    packages.mkdir(parents=True, exist_ok=True)
    p.msg(f"Mounting packages from: {packages}")
    optdir = _options_dir(p, ctx["master"], ctx["jail"], ctx["tree"], ctx["setname"])
    if optdir is not None:
        p.msg(f"Copying /var/db/ports from: {optdir}")
    make_conf = _make_conf(p, ctx["jail"], ctx["tree"], ctx["setname"])
    building = _stash(p, packages)
    signing_key = p.conf.get("PKG_REPO_SIGNING_KEY", "")
    key = Path(signing_key.removeprefix("rsa:")) if signing_key else None
    if key is not None and not key.is_file():  # common.sh prepare_ports
        return p.err(1, "PKG_REPO_SIGNING_KEY defined but the file is missing.")
    p.msg("Gathering ports metadata")
    infos: dict[str, portstree.PortInfo] = {}
    order: list[str] = []

    def visit(spec: str) -> None:
        info = portstree.read_port(tree_mnt, spec)
        if info.pkgname in infos:
            return
        infos[info.pkgname] = info
        for dep in info.depends:
            visit(dep)
        order.append(info.pkgname)

    try:
        for spec in ["ports-mgmt/pkg", *origins]:
            visit(spec)
    except portstree.PortError as exc:
        return p.err(1, str(exc))
    p.msg("Calculating ports order and dependencies")
    queue = []
    for pkgname in order:
        info = infos[pkgname]
        existing = building / "All" / f"{pkgname}.pkg"
        options = port_options(info, make_conf, optdir)
        if existing.is_file() and pkgfile.read_package(existing)[0].get("options") == options:
            continue
        queue.append((info, options))
    p.msg("Sanity checking build queue")
    stats = dict.fromkeys(
        ("queued", "built", "failed", "skipped", "ignored", "inspected", "fetched"), 0
    )
    stats["queued"] = len(queue)
    _summary(p, ctx, "starting", stats)
    records: dict[str, list[str]] = {"built": [], "failed": [], "skipped": []}
    _, timings = p.host.fleet()
    per = timings.build_seconds * p.host.slow_factor() / max(len(queue), 1)
    if queue:
        p.msg(f"Building {len(queue)} packages using up to 1 builders")
        p.msg("Hit CTRL+t at any time to see build progress and stats")
        _job(p, time.monotonic(), "Builder starting")
    broken: set[str] = set()
    for info, options in queue:
        since = time.monotonic()
        failed_dep = next(
            (d for d in info.depends if portstree.read_port(tree_mnt, d).pkgname in broken), None
        )
        if failed_dep is not None:
            dep = portstree.read_port(tree_mnt, failed_dep)
            _job(
                p,
                since,
                f"Skipping   {info.spec} | {info.pkgname}: Dependent port "
                f"{dep.spec} | {dep.pkgname} failed",
            )
            records["skipped"].append(f"{info.spec} {info.pkgname} {dep.pkgname}")
            broken.add(info.pkgname)
            stats["skipped"] += 1
            continue
        _job(p, since, f"Building   {info.spec} | {info.pkgname}")
        time.sleep(per)
        log = logs / "logs" / f"{info.pkgname}.log"
        log.write_text(
            f"=>> Building {info.spec}\nbuild started at {time.ctime()}\n"
            f"---Begin OPTIONS List---\n"
            + "".join(f"     {k}={v}\n" for k, v in options.items())
            + "---End OPTIONS List---\n",
            encoding="utf-8",
        )
        if _failing(p, info):
            with log.open("a", encoding="utf-8") as handle:
                handle.write("cc: error: unable to execute command: Killed\n*** Error code 1\n")
            (logs / "logs" / "errors" / log.name).symlink_to(f"../{log.name}")
            _job(p, since, f"Finished   {info.spec} | {info.pkgname}: Failed: build")
            records["failed"].append(f"{info.spec} {info.pkgname} build build 1")
            broken.add(info.pkgname)
            stats["failed"] += 1
            continue
        deps = {}
        for dep_spec in info.depends:
            dep = portstree.read_port(tree_mnt, dep_spec)
            deps[dep.name] = {"origin": dep.origin, "version": dep.version}
        files = {f"/usr/local/{entry}": _content(info, entry, ctx["jail"]) for entry in info.plist}
        for stale in (building / "All").glob(f"{info.name}-*.pkg"):
            stale.unlink()
        pkgfile.write_package(
            building / "All" / f"{info.pkgname}.pkg", _manifest(info, options, abi, deps), files
        )
        _job(p, since, f"Finished   {info.spec} | {info.pkgname}: Success")
        records["built"].append(f"{info.spec} {info.pkgname} 1")
        stats["built"] += 1
    if queue:
        p.msg("Stopping up to 1 builders")
    for kind, lines in records.items():
        (logs / f".poudriere.ports.{kind}").write_text("".join(f"{x}\n" for x in lines))
    p.host.count("poudriere-bulk")
    p.msg("Creating pkg repository")
    latest = building / "Latest"
    latest.mkdir(parents=True, exist_ok=True)
    pkg = infos[order[0]]
    (latest / "pkg.pkg").unlink(missing_ok=True)
    (latest / "pkg.pkg").symlink_to(f"../All/{pkg.pkgname}.pkg")
    if key is not None:  # include/pkg.sh build_repo: pkg repo /packages /tmp/repo.key
        p.msg(f"Signing repository with key: {signing_key}")
    try:
        pkgfile.write_repo(building, key)
    except pkgsign.SignError as exc:
        print(f"pkg: {exc}", file=sys.stderr, flush=True)
        return p.err(1, "Failed to sign pkg repository")
    failures = stats["failed"] + stats["skipped"]
    if stats["failed"] and p.conf.get("COMMIT_PACKAGES_ON_FAILURE", "yes") == "no":
        p.warn("Not committing, or publishing, packages to repository as failures were encountered")
    else:
        _commit(p, packages, building)
        (logs.parent / "latest-done").unlink(missing_ok=True)
        (logs.parent / "latest-done").symlink_to(ctx["buildname"])
    if records["built"]:
        p.msg("Built ports: " + " ".join(line.split()[0] for line in records["built"]))
    if records["failed"]:
        p.msg("Failed ports: " + " ".join(f"{line.split()[0]}:build" for line in records["failed"]))
    if records["skipped"]:
        p.msg("Skipped ports: " + " ".join(line.split()[0] for line in records["skipped"]))
    _summary(p, ctx, "done", stats)
    p.msg(f"Logs: {logs}")
    return failures
