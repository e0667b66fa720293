"""mount(8), umount(8), mount_nfs(8) and showmount(8).

Sources: sbin/mount/mount.c (putfsent for ``-p``), sbin/umount,
sbin/mount_nfs/mount_nfs.c (getnfsargs, nfs_tryproto), usr.bin/showmount.

The host's own file systems are ZFS datasets (``zroot/ROOT/<BE>`` on /,
``zroot/usr/src``, ``zroot/usr/obj`` unless /usr/obj lives in the BE,
``zroot/usr/ports``), or ``/dev/ada0p2`` UFS on a ``--ufs`` host; every host
has its EFI system partition ``/dev/gpt/efiboot0`` on /boot/efi (msdosfs,
bsdinstall's layout). ``mount -t nullfs [-o ro] DIR MNT`` and ``mount -t
devfs devfs MNT`` (beinstall.sh's, into a mounted BE) are bind mounts, listed
by ``mount -p``.
NFS mounts are bind mounts of the server host's directory (read-only for
``-o ro``), allowed only by what the server's mountd loaded
(reconciler/sim/exports.py); they are remembered in /run (gone at reboot,
like the real ones). ``mount -a -t nfs`` mounts
fstab's nfs lines, as a booting client does.

mount_nfs retries a failed mount (server down, mountd not running, path not
exported to this client: all "remote" errors) until it works: for ever by
default, ``retrycnt=N`` times at most, sleeping ``Timings.nfs_retry_seconds``
(60 s on FreeBSD: rtm_ifinfo_sleep(60)) between tries. With ``bg`` it
backgrounds after the first failure (``Cannot immediately mount ...,
backgrounding``) and returns 0, retrying on its own; without it the caller
(a boot's ``mount -a``) waits, so a boot hangs while the server is down.
"""

from __future__ import annotations

import getopt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reconciler.sim import state as simstate
from reconciler.sim.commands.host import Host
from reconciler.sim.layout import REAL_MOUNT, REAL_UMOUNT

MOUNTS = Path("/run/freebsd-sim.mounts")


def _load() -> list[dict[str, str]]:
    try:
        data = json.loads(MOUNTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(data) if isinstance(data, list) else []


def _save(mounts: list[dict[str, str]]) -> None:
    MOUNTS.write_text(json.dumps(mounts) + "\n", encoding="utf-8")


def _field(text: str) -> str:
    """A putfsent column: padded with tabs to the next multiple of 8 (or a space)."""
    n = len(text)
    return text + ("\t" if n < 8 else "") + ("\t" if n < 16 else "") + ("\t" if n < 24 else " ")


def _entries(host: Host) -> list[tuple[str, str, str, str, str]]:
    st = host.state()
    rows: list[tuple[str, str, str, str, str]] = []
    if st.get("ufs"):
        rows.append(("/dev/ada0p2", "/", "ufs", "rw", "1 1"))
        rows.append(("devfs", "/dev", "devfs", "rw", "0 0"))
    else:
        rows.append((f"zroot/ROOT/{st.get('booted_be')}", "/", "zfs", "rw,nfsv4acls", "0 0"))
        rows.append(("devfs", "/dev", "devfs", "rw", "0 0"))
        rows.append(("zroot/usr/src", "/usr/src", "zfs", "rw,nfsv4acls", "0 0"))
        rows.append(("zroot/usr/ports", "/usr/ports", "zfs", "rw,nosuid,nfsv4acls", "0 0"))
        if not st.get("obj_in_be"):
            rows.append(("zroot/usr/obj", "/usr/obj", "zfs", "rw,nfsv4acls", "0 0"))
        for name, info in sorted(st.get("bes", {}).items()):
            if info.get("mounted"):
                rows.append((f"zroot/ROOT/{name}", info["mounted"], "zfs", "rw,nfsv4acls", "0 0"))
    # The ESP, as bsdinstall's fstab mounts it (its dump and pass come from fstab).
    rows.append(("/dev/gpt/efiboot0", "/boot/efi", "msdosfs", "rw", "2 2"))
    for m in _load():
        rows.append((m["spec"], m["file"], m.get("type", "nfs"), m["opts"], "0 0"))
    return rows


def _fstab() -> list[tuple[str, str, str, str]]:
    try:
        text = Path("/etc/fstab").read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 4:
            rows.append((parts[0], parts[1], parts[2], parts[3]))
    return rows


def _server_path(host: Host, server: str, path: str) -> Path | None:
    """Where the server's exported ``path`` lives (inside this namespace)."""
    layout = host.layout
    st = simstate.load(layout.host(server))
    spec = next(s for s in host.fleet()[0] if s.name == server)
    if path == "/usr/src" or path.startswith("/usr/src/"):
        return layout.dataset(server, "usr-src") / path[len("/usr/src") :].lstrip("/")
    if path == "/usr/ports" or path.startswith("/usr/ports/"):
        return layout.dataset(server, "usr-ports") / path[len("/usr/ports") :].lstrip("/")
    if (path == "/usr/obj" or path.startswith("/usr/obj/")) and not spec.obj_in_be:
        return layout.dataset(server, "usr-obj") / path[len("/usr/obj") :].lstrip("/")
    parts = Path(path).relative_to("/").parts
    if parts and parts[0] in ("usr", "var", "etc", "root", "boot"):
        return layout.be(server, st.get("booted_be") or "default").joinpath(*parts)
    return None


def _try(host: Host, server: str, server_spec: Any, path: str) -> tuple[str, Path | None]:
    """One nfs_tryproto(): ("", source) or (error string, None)."""
    from reconciler.sim import exports

    server_dir = host.layout.host(server_spec.name)
    if simstate.load(server_dir).get("power") != "on":
        return (
            f"[tcp] {server}:{path}: RPCPROG_NFS: RPC: Port mapper failure - RPC: Timed out",
            None,
        )
    loaded = exports.loaded(server_dir)
    if loaded is None:
        return f"[tcp] {server}:{path}: RPCPROG_MNT: RPC: Program not registered", None
    source = _server_path(host, server_spec.name, path)
    if source is None or exports.covering(loaded, path, host.spec().address) is None:
        return f"[tcp] {server}:{path}: Permission denied", None
    return "", source


def _retrycnt(opts: str) -> int:
    for opt in opts.split(","):
        if opt.startswith("retrycnt="):
            value = opt.partition("=")[2]
            if not value.isdigit():
                raise ValueError(f"illegal retrycnt value -- {value}")
            return int(value)
    return 0  # the default: retry for ever


def mount_nfs(host: Host, spec: str, mnt: str, opts: str) -> int:
    server_name, _, path = spec.rpartition(":")
    server_name = server_name.strip("[]")
    specs, timings = host.fleet()
    server = next((s for s in specs if server_name in (s.name, s.address)), None)
    if server is None or not path.startswith("/"):
        print(
            f"mount_nfs: {server_name}: hostname nor servname provided, or not known",
            file=sys.stderr,
        )
        return 1
    words = opts.split(",") if opts else []
    try:
        retries = _retrycnt(opts)
    except ValueError as exc:
        print(f"mount_nfs: {exc}", file=sys.stderr)
        return 1
    background = "bg" in words
    backgrounded = False
    while True:
        error, source = _try(host, server_name, server, path)
        if source is not None:
            break
        if not backgrounded:
            print(error, file=sys.stderr, flush=True)
        if retries != 0:
            retries -= 1
            if retries == 0:
                return 1
        if background and not backgrounded:
            print(
                f"mount_nfs: Cannot immediately mount {server_name}:{path}, backgrounding",
                file=sys.stderr,
                flush=True,
            )
            if os.fork() > 0:
                return 0  # daemon(0, 0): the caller goes on; the child keeps trying
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            backgrounded = True
        time.sleep(timings.nfs_retry_seconds)
    source.mkdir(parents=True, exist_ok=True)
    Path(mnt).mkdir(parents=True, exist_ok=True)
    ro = "ro" in words
    args = [REAL_MOUNT, "--bind", *(["-o", "ro"] if ro else []), str(source), mnt]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"mount_nfs: nmount: {mnt}: {done.stderr.strip()}", file=sys.stderr)
        return 1
    mounts = [m for m in _load() if m["file"] != mnt]
    mounts.append({"spec": spec, "file": mnt, "opts": "ro" if ro else "rw"})
    _save(mounts)
    if backgrounded:
        os._exit(0)
    return 0


def mount_local(kind: str, spec: str, mnt: str, opts: str) -> int:
    """mount_nullfs(8) (a directory at another path) or devfs(5), as bind mounts."""
    source = "/dev" if kind == "devfs" else spec
    if not Path(source).is_dir():
        print(f"mount_{kind}: {spec}: No such file or directory", file=sys.stderr)
        return 1
    if not Path(mnt).is_dir():
        print(f"mount_{kind}: {mnt}: No such file or directory", file=sys.stderr)
        return 1
    ro = "ro" in opts.split(",")
    args = [REAL_MOUNT, "--bind", *(["-o", "ro"] if ro else []), source, mnt]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"mount_{kind}: {mnt}: {done.stderr.strip()}", file=sys.stderr)
        return 1
    mounts = [m for m in _load() if m["file"] != mnt]
    mounts.append({"spec": spec, "file": mnt, "opts": "ro" if ro else "rw", "type": kind})
    _save(mounts)
    return 0


def _print(host: Host, fstab_style: bool, types: set[str] | None) -> int:
    for spec, file, fstype, opts, passno in _entries(host):
        if types and fstype not in types:
            continue
        if fstab_style:
            opt = opts + ("\t" if len(opts) < 8 else " ")
            sys.stdout.write(f"{_field(spec)}{_field(file)}{fstype}\t{opt}\t{passno}\n")
        else:
            words = [fstype]
            if fstype in ("zfs", "ufs", "msdosfs"):
                words.append("local")
            if fstype == "zfs":
                words.append("nfsv4acls")
            if opts.split(",")[0] == "ro":
                words.append("read-only")
            sys.stdout.write(f"{spec} on {file} ({', '.join(words)})\n")
    return 0


def _mount(host: Host, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "adFfLlnpo:rt:uvw")
    except getopt.GetoptError:
        print(
            "usage: mount [-adflpruvw] [-F fstab] [-o options] [-t ufs | external_type]",
            file=sys.stderr,
        )
        return 1
    flags: dict[str, Any] = {}
    for o, v in opts:
        flags[o] = v
    types = set(flags["-t"].split(",")) if "-t" in flags else None
    options = flags.get("-o", "")
    if "-r" in flags:
        options = ",".join(filter(None, [options, "ro"]))
    if not rest:
        if "-a" in flags:
            status = 0
            mounted = {m["file"] for m in _load()}
            for spec, file, fstype, fsopts in _fstab():
                if fstype != "nfs" or (types and "nfs" not in types) or "noauto" in fsopts:
                    continue
                if file not in mounted and mount_nfs(host, spec, file, fsopts) != 0:
                    status = 1
            return status
        return _print(host, "-p" in flags, types)
    if len(rest) == 1:
        for spec, file, fstype, fsopts in _fstab():
            if rest[0] in (spec, file):
                if fstype != "nfs":
                    print(f"mount: {file}: Device busy", file=sys.stderr)
                    return 1
                return mount_nfs(host, spec, file, ",".join(filter(None, [fsopts, options])))
        print(f"mount: {rest[0]}: unknown special file or file system.", file=sys.stderr)
        return 1
    if len(rest) == 2 and (types == {"nfs"} or ":" in rest[0]):
        return mount_nfs(host, rest[0], rest[1], options)
    if len(rest) == 2 and types in ({"nullfs"}, {"devfs"}):
        return mount_local(next(iter(types)), rest[0], rest[1], options)
    print("mount: only nfs, nullfs and devfs mounts are simulated", file=sys.stderr)
    return 1


def _umount(host: Host, argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "afnvt:AF:h:")
    except getopt.GetoptError:
        print("usage: umount [-fNnv] special ... | node ... | fsid ...", file=sys.stderr)
        return 1
    force = any(o == "-f" for o, _ in opts)
    status = 0
    for target in rest:
        mounts = _load()
        match = next((m for m in mounts if target in (m["file"], m["spec"])), None)
        if match is None:
            print(f"umount: {target}: not a file system root directory", file=sys.stderr)
            status = 1
            continue
        done = subprocess.run(
            [REAL_UMOUNT, *(["-l"] if force else []), match["file"]], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"umount: unmount of {match['file']} failed: Device busy", file=sys.stderr)
            status = 1
            continue
        _save([m for m in mounts if m is not match])
    return status


def _showmount(host: Host, argv: list[str]) -> int:
    """``showmount -e [host]``: the export list the server's mountd loaded."""
    from reconciler.sim import exports

    try:
        _opts, rest = getopt.getopt(argv, "adeE13")
    except getopt.GetoptError:
        print("usage: showmount [-a | -d] [-e3] [host]", file=sys.stderr)
        return 1
    name = rest[0] if rest else "localhost"
    target = host.name if name in ("localhost", "127.0.0.1") else name
    spec = next((s for s in host.fleet()[0] if target in (s.name, s.address)), None)
    if spec is None:
        print(f"showmount: can't do exports rpc: {name}: unknown host", file=sys.stderr)
        return 1
    loaded = None
    if simstate.load(host.layout.host(spec.name)).get("power") == "on":
        loaded = exports.loaded(host.layout.host(spec.name))
    if loaded is None:
        print("RPC: Program not registered\nshowmount: can't do exports rpc", file=sys.stderr)
        return 1
    print(f"Exports list on {name}:")
    for export in loaded:
        clients = export["hosts"] + ([export["network"]] if export["network"] else [])
        for directory in export["dirs"]:
            shown = "".join(f"{c} " for c in clients) if clients else "Everyone"
            print(f"{directory:<34} {shown}")
    return 0


def run(host: Host, prog: str, argv: list[str]) -> int:
    if prog == "showmount":
        return _showmount(host, argv)
    return _umount(host, argv) if prog == "umount" else _mount(host, argv)
