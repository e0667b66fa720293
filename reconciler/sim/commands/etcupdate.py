"""etcupdate(8): usr.sbin/etcupdate/etcupdate.sh, simplified to the stock /etc files.

The "built" tree is SRCDIR/etc/ (the simulated source keeps its /etc files
there). WORKDIR is DESTDIR/var/db/etcupdate with ``current``, ``old``,
``preworld``, ``conflicts`` and ``warnings`` as in the real script:

- ``-B`` (build_tree with nobuild): ``make distrib-dirs`` and ``make
  distribution`` in SRCDIR with the inherited MAKEOBJDIRPREFIX, so in the
  build's objdir; share/mk/src.sys.obj.mk trusts an objdir it cannot write
  only when every target is an install target, so where that objdir is not
  writable make builds in SRCDIR itself, and where that is read-only too (an
  NFS client) the build fails: ``Failed to build new tree.``, exit 1, the
  make error in WORKDIR/log. Without ``-B`` etcupdate builds etc/ in a
  private objdir under its temporary tree, which always works.
- update (default): refuses with ``Conflicts remain
  from previous update, aborting.`` (exit 1) while conflicts are left;
  rotates current -> old (``No previous tree to compare against, a sane
  comparison is not possible.`` without one), three-way merges each file and
  prints ``  D``/``  U``/``  M``/``  A``/``  C`` lines; conflicts stay in
  ``conflicts/`` with merge markers, the live file untouched, exit 0.
- ``-p`` (pre-world): only etc/master.passwd and etc/group, compared with
  ``current``, new tree in ``preworld``; current is left as it was.
- ``status``: ``  C /etc/FILE`` per conflict, then ``Warnings:`` and the warnings.
The ``etcupdate-conflict`` fault leaves a conflict on /etc/rc.conf (once).
"""

from __future__ import annotations

import getopt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from reconciler.sim.commands.common import progress
from reconciler.sim.commands.host import Host

PREWORLD = ("etc/master.passwd", "etc/group")
USAGE = (
    "usage: etcupdate [-npBF] [-d workdir] [-r | -s source | -t tarball]\n"
    "                 [-A patterns] [-D destdir] [-I patterns] [-L logfile]\n"
    "                 [-M options]\n"
    "       etcupdate build [-B] [-d workdir] [-s source] [-L logfile] [-M options]\n"
    "                 <tarball>\n"
    "       etcupdate diff [-d workdir] [-D destdir] [-I patterns] [-L logfile]\n"
    "       etcupdate extract [-B] [-d workdir] [-s source | -t tarball] [-L logfile]\n"
    "                 [-M options]\n"
    "       etcupdate resolve [-p] [-d workdir] [-D destdir] [-L logfile]\n"
    "       etcupdate status [-d workdir] [-D destdir]"
)


def _files(tree: Path) -> dict[str, Path]:
    if not tree.is_dir():
        return {}
    return {str(p.relative_to(tree)): p for p in sorted(tree.rglob("*")) if p.is_file()}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _merge(local: bytes, old: bytes, new: bytes) -> tuple[bytes, bool]:
    """Three-way merge as etcupdate does with diff3: (result, clean)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in (("local", local), ("old", old), ("new", new)):
            path = Path(tmp) / name
            path.write_bytes(data)
            paths.append(str(path))
        done = subprocess.run(
            ["git", "merge-file", "-p", "-L", "yours", "-L", "original", "-L", "new", *paths],
            capture_output=True,
        )
    return done.stdout, done.returncode == 0


def _conflict(conflicts: Path, rel: str, text: bytes) -> None:
    path = conflicts / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)


def _writable(path: Path) -> bool:
    """src.sys.obj.mk's CheckAutoObj: the directory, or the deepest existing parent, writable."""
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK)


def _objdir_unusable(src: Path, work: Path) -> bool:
    """etcupdate -B's make distribution would fail: no writable objdir, no writable SRCDIR."""
    objtop = Path(os.environ.get("MAKEOBJDIRPREFIX", "/usr/obj") + str(src)) / "amd64.amd64"
    if _writable(objtop) or os.access(src / "etc", os.W_OK):
        return False
    with (work / "log").open("a", encoding="utf-8") as log:
        log.write(
            f">>> Building tree at {work} with make -DNO_FILEMON\n"
            f"{objtop}: not writable; building in {src}/etc instead\n"
            f"install: {src}/etc/services.db: Read-only file system\n"
            "*** Error code 71\n\nStop.\n"
        )
    return True


def _update(
    host: Host, src: Path, dest: Path, work: Path, preworld: bool, nobuild: bool = False
) -> int:
    conflicts = work / "conflicts"
    if conflicts.exists():
        for d in sorted((p for p in conflicts.rglob("*") if p.is_dir()), reverse=True):
            if not any(d.iterdir()):
                d.rmdir()
        if not any(conflicts.iterdir()):
            conflicts.rmdir()
    if conflicts.is_dir():
        print("Conflicts remain from previous update, aborting.")
        return 1
    if not (src / "Makefile.inc1").is_file() or not (src / "etc").is_dir():
        print("Failed to build new tree.")  # etcupdate's extract_tree, on a missing source
        return 1
    if nobuild and not preworld and _objdir_unusable(src, work):
        print("Failed to build new tree.")
        return 1
    current, old_tree = work / "current", work / "old"
    if preworld:
        old_tree, new_tree = current, work / "preworld"
        shutil.rmtree(new_tree, ignore_errors=True)
    else:
        new_tree = current
        if current.is_dir():
            shutil.rmtree(old_tree, ignore_errors=True)
            # shutil.move: overlayfs refuses rename(2) of some directories (EXDEV).
            shutil.move(str(current), str(old_tree))
    if not old_tree.is_dir():
        print("No previous tree to compare against, a sane comparison is not possible.")
        return 1
    stock = _files(src / "etc")
    wanted = [f"etc/{rel}" for rel in stock if not preworld or f"etc/{rel}" in PREWORLD]
    for rel in wanted:
        target = new_tree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    old, new = _files(old_tree), _files(new_tree)
    if preworld:
        old = {k: v for k, v in old.items() if k in PREWORLD}
    (work / "warnings").unlink(missing_ok=True)
    conflicts.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    warnings: list[str] = []
    for rel in sorted(set(old) - set(new)):
        gone = dest / rel
        if _read(gone) == _read(old[rel]):
            gone.unlink()
            lines.append(f"  D /{rel}")
        elif gone.exists():
            warnings.append(f"  Removed file changed: /{rel}")
    for rel in sorted(new):
        local_path = dest / rel
        local, new_data = _read(local_path), _read(new[rel]) or b""
        old_data = _read(old[rel]) if rel in old else None
        if local == new_data:
            continue
        if local is None:
            if old_data is not None and old_data == new_data:
                continue  # removed locally and unchanged upstream: respect the removal
            local_path.parent.mkdir(parents=True, exist_ok=True)
            local_path.write_bytes(new_data)
            lines.append(f"  A /{rel}")
        elif old_data is None:
            _conflict(conflicts, rel, new_data)
            lines.append(f"  C /{rel}")
        elif local == old_data:
            local_path.write_bytes(new_data)
            lines.append(f"  U /{rel}")
        elif old_data == new_data:
            continue  # only local changes
        else:
            merged, clean = _merge(local, old_data, new_data)
            if clean:
                local_path.write_bytes(merged)
                lines.append(f"  M /{rel}")
            else:
                _conflict(conflicts, rel, merged)
                lines.append(f"  C /{rel}")
    if not preworld and host.take_fault("etcupdate-conflict") is not None:
        rc = dest / "etc/rc.conf"
        ours = _read(rc) or b""
        _conflict(
            conflicts,
            "etc/rc.conf",
            b"<<<<<<< yours\n"
            + ours
            + b"=======\n"
            + b'sendmail_enable="NONE"\n'
            + b">>>>>>> new\n",
        )
        lines.append("  C /etc/rc.conf")
    _, timings = host.fleet()
    progress(host, timings.install_seconds / 4, lines)
    if not any(conflicts.rglob("*")):
        conflicts.rmdir()
    if warnings:
        (work / "warnings").write_text("\n".join(warnings) + "\n", encoding="utf-8")
        print("Warnings:")
        print("\n".join(warnings))
    return 0


def _status(work: Path) -> int:
    conflicts = work / "conflicts"
    if conflicts.is_dir():
        for path in sorted(p for p in conflicts.rglob("*") if not p.is_dir()):
            print(f"  C /{path.relative_to(conflicts)}")
    warnings = work / "warnings"
    if warnings.is_file() and warnings.stat().st_size:
        print("Warnings:")
        sys.stdout.write(warnings.read_text(encoding="utf-8"))
    return 0


def run(host: Host, prog: str, argv: list[str]) -> int:
    command = "update"
    args = list(argv)
    if args and not args[0].startswith("-"):
        command = args.pop(0)
        if command not in ("build", "diff", "extract", "status", "resolve"):
            print(USAGE, file=sys.stderr)
            return 1
    try:
        opts, _rest = getopt.getopt(args, "d:nprs:t:A:BD:FI:L:M:")
    except getopt.GetoptError:
        print(f"\n{USAGE}", file=sys.stderr)
        return 1
    values = dict(opts)
    src = Path(values.get("-s", "/usr/src"))
    dest = Path(values.get("-D", "/") or "/")
    work = Path(values.get("-d", str(dest / "var/db/etcupdate")))
    work.mkdir(parents=True, exist_ok=True)
    if command == "status":
        return _status(work)
    if command != "update":
        print(f"etcupdate: '{command}' is not simulated", file=sys.stderr)
        return 1
    if "-n" in values:
        print("etcupdate: dry runs are not simulated", file=sys.stderr)
        return 1
    host.count("etcupdate")
    return _update(host, src, dest, work, "-p" in values, "-B" in values)
