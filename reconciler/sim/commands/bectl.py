"""bectl(8): sbin/bectl/bectl.c, bectl_list.c and lib/libbe/be_error.c.

A boot environment is a set of overlay upper directories (see layout.py).
Exit codes are libbe's ``BE_ERR_*`` numbers, messages its descriptions
(printed by ``libbe_print_on_error``) plus bectl's own lines. A host without
ZFS (``--ufs``) fails every subcommand with ``libbe_init("") failed.`` and
exit 255, ``check`` silently.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reconciler.sim.commands.host import Host
from reconciler.sim.layout import BE_DIRS, REAL_MOUNT, REAL_UMOUNT

ERR_INVALIDNAME, ERR_EXISTS, ERR_NOENT = 1, 2, 3
ERR_DESTROYACT, ERR_DESTROYMNT, ERR_MOUNTED, ERR_NOMOUNT = 5, 6, 12, 13
_MESSAGES = {
    ERR_INVALIDNAME: "invalid boot environment name",
    ERR_EXISTS: "boot environment name already taken",
    ERR_NOENT: "specified boot environment does not exist",
    ERR_DESTROYACT: "cannot destroy active boot environment",
    ERR_DESTROYMNT: "cannot destroy mounted boot env unless forced",
    ERR_MOUNTED: "boot environment is already mounted",
    ERR_NOMOUNT: "boot environment is not mounted",
}
USAGE = (
    "Usage:\tbectl {-h | subcommand [args...]}\n"
    "\tbectl [-r beroot] activate [-t] beName\n"
    "\tbectl [-r beroot] activate [-T]\n"
    "\tbectl [-r beroot] check\n"
    "\tbectl [-r beroot] create [-r] [-e {nonActiveBe | beName@snapshot}] beName\n"
    "\tbectl [-r beroot] destroy [-Fo] {beName | beName@snapshot}\n"
    "\tbectl [-r beroot] list [-aDHs] [{-c property | -C property}]\n"
    "\tbectl [-r beroot] mount beName [mountpoint]\n"
    "\tbectl [-r beroot] {umount | unmount} [-f] beName\n"
)
EX_USAGE = 64


def _fail(code: int) -> int:
    print(_MESSAGES[code], file=sys.stderr)
    return code


def _usage(message: str = "") -> int:
    if message:
        print(message, file=sys.stderr)
    sys.stderr.write(USAGE)
    return EX_USAGE


def _size(path: Path) -> str:
    total = 0
    for item in path.rglob("*"):
        with contextlib.suppress(OSError):
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
    # zfs-style humanized size; a BE also carries the base system it was cloned from.
    total += 300 * 1024 * 1024
    for unit in ("K", "M", "G"):
        total /= 1024  # type: ignore[assignment]
        if total < 1024:
            return f"{total:.3g}{unit}"
    return f"{total:.3g}T"


def _list(host: Host, args: list[str]) -> int:
    scripted = "-H" in args
    st = host.state()
    rows = []
    for name, info in sorted(st.get("bes", {}).items()):
        flags = ""
        if name == st.get("booted_be"):
            flags += "N"
        if name == st.get("active_be"):
            flags += "R"
        if name == st.get("oneshot_be"):
            flags += "T"
        mountpoint = "/" if name == st.get("booted_be") else (info.get("mounted") or "-")
        rows.append(
            (
                name,
                flags or "-",
                mountpoint,
                _size(host.layout.be(host.name, name)),
                info.get("created", ""),
            )
        )
    if scripted:
        for row in rows:
            print("\t".join(row))
    else:
        print(f"{'BE':<12} {'Active':<6} {'Mountpoint':<10} {'Space':<5} Created")
        for row in rows:
            print(f"{row[0]:<12} {row[1]:<6} {row[2]:<10} {row[3]:<5} {row[4]}")
    return 0


def _valid_name(name: str) -> bool:
    return (
        bool(name)
        and " " not in name
        and "/" not in name
        and "@" not in name
        and not name.startswith(".")
    )


def _create(host: Host, args: list[str]) -> int:
    rest = [a for a in args if a != "-r"]
    if len(rest) != 1 or rest[0].startswith("-"):
        return _usage("bectl create: wrong number of arguments")
    name = rest[0]
    if " " in name:
        print("bectl create: boot environment name must not contain spaces", file=sys.stderr)
        return ERR_INVALIDNAME
    if not _valid_name(name):
        print(_MESSAGES[ERR_INVALIDNAME], file=sys.stderr)
        print(f"Failed to create bootenv {name}", file=sys.stderr)
        return ERR_INVALIDNAME
    with host.update() as st:
        if name in st.get("bes", {}):
            print(_MESSAGES[ERR_EXISTS], file=sys.stderr)
            print(f"Failed to create bootenv {name}", file=sys.stderr)
            return ERR_EXISTS
        source = host.layout.be(host.name, st["booted_be"])
        target = host.layout.be(host.name, name)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for d in BE_DIRS:
            # A ZFS clone of the booted BE: the upper dirs hold everything it changed.
            subprocess.run(["cp", "-a", str(source / d), str(target / d)], check=True)
            (target / ".work" / d).mkdir(parents=True)
        st["bes"][name] = {"created": time.strftime("%Y-%m-%d %H:%M"), "mounted": None}
    return 0


def _mount(host: Host, args: list[str]) -> int:
    if not args:
        return _usage("bectl mount: missing argument(s)")
    if len(args) > 2:
        return _usage("bectl mount: too many arguments")
    name = args[0]
    st = host.state()
    info = st.get("bes", {}).get(name)
    where = args[1] if len(args) == 2 else None
    failed = (
        f"Failed to mount bootenv {name} at {where}"
        if where
        else f"Failed to mount bootenv {name} at temporary path (null)"
    )
    if info is None:
        print(_MESSAGES[ERR_NOENT], file=sys.stderr)
        print(failed, file=sys.stderr)
        return ERR_NOENT
    if name == st.get("booted_be") or info.get("mounted"):
        print(_MESSAGES[ERR_MOUNTED], file=sys.stderr)
        print(failed, file=sys.stderr)
        return ERR_MOUNTED
    if where is None:
        where = tempfile.mkdtemp(prefix="be_mount.", dir="/tmp")
    mnt = Path(where)
    mnt.mkdir(parents=True, exist_ok=True)
    be = host.layout.be(host.name, name)
    subprocess.run([REAL_MOUNT, "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(mnt)], check=True)
    for link, target in (
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ):
        (mnt / link).symlink_to(target)
    for d in BE_DIRS:
        (mnt / d).mkdir()
        (be / ".work" / d).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                REAL_MOUNT,
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={_base(d)},upperdir={be / d},workdir={be / '.work' / d}",
                str(mnt / d),
            ],
            check=True,
        )
    with host.update() as st2:
        st2["bes"][name]["mounted"] = str(mnt)
    print(mnt)
    return 0


def _base(d: str) -> str:
    """A mounted BE is its own file system: overlaid on the machine's dirs, not the running BE's
    (a ZFS clone does not see what the booted BE changed after the snapshot it was made from).
    """
    base = Path("/run/freebsd-base") / d
    return str(base) if base.is_dir() else f"/{d}"


def unmount_be(host: Host, name: str, mnt: Path, force: bool) -> bool:
    lazy = ["-l"] if force else []
    ok = True
    for d in (*BE_DIRS, ""):
        target = mnt / d if d else mnt
        done = subprocess.run([REAL_UMOUNT, *lazy, str(target)], capture_output=True, text=True)
        ok = ok and done.returncode == 0
    if ok and mnt.parent == Path("/tmp") and mnt.name.startswith("be_mount."):
        with contextlib.suppress(OSError):
            mnt.rmdir()
    return ok


def _umount(host: Host, cmd: str, args: list[str]) -> int:
    force = "-f" in args
    rest = [a for a in args if a != "-f"]
    if len(rest) != 1:
        return _usage(f"bectl {cmd}: wrong number of arguments")
    name = rest[0]
    info = host.state().get("bes", {}).get(name)
    if info is None:
        print(_MESSAGES[ERR_NOENT], file=sys.stderr)
        print(f"Failed to unmount bootenv {name}", file=sys.stderr)
        return ERR_NOENT
    if not info.get("mounted"):
        print(_MESSAGES[ERR_NOMOUNT], file=sys.stderr)
        print(f"Failed to unmount bootenv {name}", file=sys.stderr)
        return ERR_NOMOUNT
    if not unmount_be(host, name, Path(info["mounted"]), force):
        print("specified path is busy", file=sys.stderr)
        print(f"Failed to unmount bootenv {name}", file=sys.stderr)
        return 8
    with host.update() as st:
        st["bes"][name]["mounted"] = None
    return 0


def _activate(host: Host, args: list[str]) -> int:
    temp = "-t" in args
    reset = "-T" in args
    rest = [a for a in args if a not in ("-t", "-T")]
    if temp and reset:
        return _usage()
    if any(a.startswith("-") for a in rest):
        return _usage(f"bectl activate: unknown option '{rest[0][1:2]}'")
    if len(rest) != 1 and not (reset and not rest):
        return _usage("bectl activate: wrong number of arguments")
    if reset:
        with host.update() as st:
            st["oneshot_be"] = None
        print("Temporary activation removed")
        return 0
    name = rest[0]
    # bectl.c bectl_cmd_activate: the result line, then "for next boot" on a
    # line of its own after -t (whether it worked or not).
    with host.update() as st:
        if name not in st.get("bes", {}):
            print(_MESSAGES[ERR_NOENT], file=sys.stderr)
            print(f"Did not successfully activate boot environment {name}")
            if temp:
                print("for next boot")
            return ERR_NOENT
        if temp:
            st["oneshot_be"] = name
        else:
            # libbe be_activate, permanent branch: bootfs is set and the BE
            # promoted; the pool's one-shot (nextboot) is left alone. Only
            # "activate -T" (be_deactivate with temporary) removes it.
            st["active_be"] = name
    print(f"Successfully activated boot environment {name}")
    if temp:
        print("for next boot")
    return 0


def _destroy(host: Host, args: list[str]) -> int:
    force = "-F" in args
    rest = [a for a in args if a not in ("-F", "-o")]
    if len(rest) != 1:
        return _usage("bectl destroy: wrong number of arguments")
    name = rest[0]
    st = host.state()
    info = st.get("bes", {}).get(name)
    if info is None:
        return _fail(ERR_NOENT)
    if name in (st.get("booted_be"), st.get("active_be")):
        return _fail(ERR_DESTROYACT)
    if info.get("mounted"):
        if not force:
            return _fail(ERR_DESTROYMNT)
        unmount_be(host, name, Path(info["mounted"]), True)
    with host.update() as st2:
        st2["bes"].pop(name, None)
        if st2.get("oneshot_be") == name:
            st2["oneshot_be"] = None
    shutil.rmtree(host.layout.be(host.name, name), ignore_errors=True)
    return 0


def run(host: Host, prog: str, argv: list[str]) -> int:
    args = list(argv)
    if args[:1] == ["-h"]:
        sys.stdout.write(USAGE)
        return 0
    if args[:1] == ["-r"]:
        args = args[2:]
    if not args:
        return _usage()
    cmd, rest = args[0], args[1:]
    known = ("activate", "check", "create", "destroy", "list", "mount", "umount", "unmount")
    if cmd not in known:
        return _usage(f"Unknown command: {cmd}")
    if host.ufs:
        if cmd != "check":
            print('libbe_init("") failed.', file=sys.stderr)
        return 255
    if cmd == "check":
        return 0 if not rest else _usage("bectl check: wrong number of arguments")
    if cmd == "list":
        return _list(host, rest)
    if cmd == "create":
        return _create(host, rest)
    if cmd == "mount":
        return _mount(host, rest)
    if cmd in ("umount", "unmount"):
        return _umount(host, cmd, rest)
    if cmd == "activate":
        return _activate(host, rest)
    return _destroy(host, rest)
