"""mount(8) and umount(8): sbin/mount/mount.c (putfsent for ``-p``), sbin/umount.

The host's own file systems are ZFS datasets (``zroot/ROOT/<BE>`` on /,
``zroot/usr/src``, ``zroot/usr/obj`` unless /usr/obj lives in the BE, ``zroot/usr/ports``), or
``/dev/ada0p2`` UFS on a ``--ufs`` host. ``mount -t nullfs [-o ro] DIR MNT``
and ``mount -t devfs devfs MNT`` (beinstall.sh's, into a mounted BE) are
bind mounts, listed by ``mount -p``. NFS mounts are bind mounts of the
server host's directory (read-only for ``-o ro``), refused unless the
server's /etc/exports lists the path; they are remembered in /run (gone at
reboot, like the real ones). ``mount -a -t nfs`` mounts fstab's nfs lines.
"""

from __future__ import annotations

import getopt
import json
import subprocess
import sys
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


def _exported(host: Host, server: str, path: str) -> bool:
    st = simstate.load(host.layout.host(server))
    exports = host.layout.be(server, st.get("booted_be") or "default") / "etc" / "exports"
    try:
        text = exports.read_text(encoding="utf-8")
    except OSError:
        return False
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        dirs = [w for w in words if w.startswith("/")]
        if any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs):
            return True
    return False


def mount_nfs(host: Host, spec: str, mnt: str, opts: str) -> int:
    server_name, _, path = spec.partition(":")
    specs = host.fleet()[0]
    server = next((s for s in specs if server_name in (s.name, s.address)), None)
    if server is None or not path.startswith("/"):
        print(
            f"mount_nfs: {server_name}: hostname nor servname provided, or not known",
            file=sys.stderr,
        )
        return 1
    if simstate.load(host.layout.host(server.name)).get("power") != "on":
        print(f"[tcp] {spec}: RPCPROG_MNT: RPC: Timed out", file=sys.stderr)
        return 1
    source = _server_path(host, server.name, path)
    if source is None or not _exported(host, server.name, path):
        print(
            f"mount_nfs: can't mount {path} from {server_name} onto {mnt}: Permission denied",
            file=sys.stderr,
        )
        return 1
    source.mkdir(parents=True, exist_ok=True)
    Path(mnt).mkdir(parents=True, exist_ok=True)
    ro = "ro" in opts.split(",")
    args = [REAL_MOUNT, "--bind", *(["-o", "ro"] if ro else []), str(source), mnt]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"mount_nfs: {mnt}: {done.stderr.strip()}", file=sys.stderr)
        return 1
    mounts = [m for m in _load() if m["file"] != mnt]
    mounts.append({"spec": spec, "file": mnt, "opts": "ro" if ro else "rw"})
    _save(mounts)
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
            if fstype in ("zfs", "ufs"):
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


def run(host: Host, prog: str, argv: list[str]) -> int:
    return _umount(host, argv) if prog == "umount" else _mount(host, argv)
