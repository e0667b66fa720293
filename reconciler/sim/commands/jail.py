"""jail(8), the form the reconciler uses: usr.sbin/jail/jail.8, jail.c.

``jail [-qv] -c path=DIR [name=N] [host.hostname=H] [mount.devfs] [persist]
command=CMD [ARG ...]``: create a jail rooted at ``path``, mount a devfs at
``path/dev`` first when ``mount.devfs`` is set, run the command inside it
(everything after ``command=`` is the command and its arguments), and,
without ``persist``, remove the jail (and unmount its devfs) as its last
process exits. jail's exit status is the command's. It prints
``NAME: created`` unless ``-q``.

Simulated as a chroot in a private mount namespace (so the mounts vanish
with the command): /dev bound at ``path/dev`` for mount.devfs; and the
simulator's own wiring, which a real host does not need: the host's /run
(the fleet directory, /run/sshd) and the directories of the Python that
runs the simulated FreeBSD commands, bound at the same paths inside.
No network restriction is simulated (no ip4.addr: the jail has none on
FreeBSD either, and the checks run here need none).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reconciler.sim.commands.host import Host
from reconciler.sim.layout import REAL_MOUNT

USAGE = (
    "usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username] [-cmr]\n"
    "            param=value ... [command=command ...]\n"
    "       jail [-dqv] [-f file] [-p limit] [-cmr] [jail]\n"
    "       jail [-qv] [-f file] [-e separator] [-rR] [* | jail ...]\n"
    "       jail [-dhilqv] [-J jid_file] [-u username] [-U username]\n"
    "            [-n jailname] [-s securelevel]\n"
    "            path hostname ip[,...] command ..."
)
_BOOLEANS = ("mount.devfs", "persist", "nopersist")

# $1 root, $2 devfs (yes|no), then the directories to bind, "--", the command.
_SCRIPT = r"""
root=$1; devfs=$2; shift 2
M=%(mount)s
if [ "$devfs" = yes ]; then mkdir -p "$root/dev" && $M --bind /dev "$root/dev" || exit 1; fi
mkdir -p "$root/run" && $M --rbind /run "$root/run" || exit 1
while [ "$1" != -- ]; do
  mkdir -p "$root$1" && $M --bind "$1" "$root$1" || exit 1
  shift
done
shift
exec chroot "$root" "$@"
"""


def _wiring() -> list[str]:
    """What the simulated commands need inside the jail: their package and interpreter."""
    package_root = Path(__file__).resolve().parents[3]
    dirs = [str(package_root), str(Path(sys.executable).parent)]
    keep: list[str] = []
    for d in sorted(set(dirs), key=len):
        if d.startswith("/usr/") or any(d == k or d.startswith(k + "/") for k in keep):
            continue  # /usr is the BE's own; a directory under a bound one comes with it
        keep.append(d)
    return keep


def run(host: Host, prog: str, argv: list[str]) -> int:
    args = list(argv)
    flags: set[str] = set()
    while args and args[0].startswith("-") and "=" not in args[0]:
        flags |= {f"-{c}" for c in args.pop(0)[1:]}
    if "-c" not in flags or flags - {"-c", "-q", "-v"}:
        print(USAGE, file=sys.stderr)
        return 1
    params: dict[str, str] = {}
    command: list[str] = []
    for index, arg in enumerate(args):
        if arg.startswith("command="):
            command = [arg[len("command=") :], *args[index + 1 :]]
            break
        if "=" in arg:
            key, _, value = arg.partition("=")
            params[key] = value
        elif arg in _BOOLEANS:
            params[arg] = "true"
        else:
            print(f"jail: unknown parameter: {arg}", file=sys.stderr)
            return 1
    if not command or not command[0]:
        if "persist" not in params:
            print("jail: jail has no command and is not persistent", file=sys.stderr)
        else:
            print("jail: sim: persistent jails are not simulated", file=sys.stderr)
        return 1
    root = Path(params.get("path", "/"))
    if not root.is_dir():
        print(f"jail: path {root}: No such file or directory", file=sys.stderr)
        return 1
    with host.update() as st:
        jid = int(st.get("next_jid", 1))
        st["next_jid"] = jid + 1
    host.count("jail")
    name = params.get("name", str(jid))
    if "-q" not in flags:
        print(f"{name}: created", flush=True)
    devfs = "yes" if params.get("mount.devfs") == "true" else "no"
    script = _SCRIPT % {"mount": REAL_MOUNT}
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            script,
            "jail",
            str(root),
            devfs,
            *_wiring(),
            "--",
            *command,
        ],
        check=False,
    )
    return done.returncode
