"""The remote contract: every path and name the reconciler owns on a host.

The facts readers, the planner, the rollout and the simulated fleet all
import these, so a path is spelled once (docs/remote-contract.md describes
each). Pure constants and small pure functions: no I/O, no imports from the
rest of the package.
"""

from __future__ import annotations

#: /usr/src on the src host; NFS-mounted at the same path on every other host.
SRC = "/usr/src"
#: /usr/obj on a build host; NFS-mounted at the same path by its set's hosts.
OBJ = "/usr/obj"

#: The reconciler's state directory on a host (inside each boot environment).
DB_DIR = "/var/db/reconciler"
#: ``key=value`` lines naming the build a root file system carries.
MARKER = f"{DB_DIR}/installed"
#: Logs of detached jobs.
LOG_DIR = "/var/log/reconciler"
#: daemon(8) pidfiles of the detached jobs (one build and one install at a time).
BUILD_PIDFILE = "/var/run/reconciler-build.pid"
INSTALL_PIDFILE = "/var/run/reconciler-install.pid"
#: lockf(1) lock of the reconciler acting on the host (any clone, any machine); its
#: content names the holder (pid, machine, command, config repo, since when).
HOST_LOCK = "/var/run/reconciler.lock"

#: Confirm or revert (docs/remote-contract.md): the rc.d watchdog put into a new boot
#: environment before its first boot, and its rc.conf.d knobs (rc.subr load_rc_config
#: reads /etc/rc.conf.d/NAME).
WATCHDOG = "reconciler_confirm"
WATCHDOG_SCRIPT = f"/usr/local/etc/rc.d/{WATCHDOG}"
WATCHDOG_CONF = f"/etc/rc.conf.d/{WATCHDOG}"
WATCHDOG_PIDFILE = f"/var/run/{WATCHDOG}.pid"
#: Made (mkdir: one winner) by whoever decides a boot first, the reconciler confirming
#: or the watchdog reverting; its file ``by`` says which. /var/run is emptied at boot.
WATCHDOG_DECIDED = f"/var/run/{WATCHDOG}.decided"
#: Left by the watchdog in the boot environment it reverts to: which BE it gave up on.
WATCHDOG_REVERTED = f"{DB_DIR}/reverted"
WATCHDOG_LOG = f"{LOG_DIR}/confirm.log"

#: Per build: the inputs written before make starts, the exit status when it ends.
BUILD_META = ".reconciler"
BUILD_INPUTS = f"{BUILD_META}/inputs"
BUILD_EXIT = f"{BUILD_META}/exit"
#: The make.conf and src.conf the build was made with (__MAKE_CONF, SRCCONF): a build
#: and its installs read these, never the host's /etc, so they agree whatever /etc says.
BUILD_MAKE_CONF = f"{BUILD_META}/make.conf"
BUILD_SRC_CONF = f"{BUILD_META}/src.conf"

#: Prefix of the boot environments the reconciler makes.
BE_PREFIX = "rc-"
#: How many hex digits of a build id name it for people (BE names, subjects).
SHORT = 12


def short(build_id: str) -> str:
    """The first 12 hex digits of a build id: how people and BE names refer to it."""
    return build_id[:SHORT]


def be_name(build_id: str) -> str:
    """The boot environment a build is installed into."""
    return f"{BE_PREFIX}{short(build_id)}"


def objdir(build_id: str) -> str:
    """MAKEOBJDIRPREFIX of one build: builds never overwrite each other."""
    return f"{OBJ}/{build_id}"


def build_of_kernel(kernel_version: str) -> str | None:
    """The build id whose objdir a kernel was built in, from ``uname -v`` (None: not ours).

    newvers.sh ends the version string with ``user@host:<kernel build directory>``,
    and a reconciler build's kernels are built under ``/usr/obj/<build id>/``.
    """
    marker = f"{OBJ}/"
    for word in kernel_version.split():
        _, _, path = word.rpartition(":")
        if path.startswith(marker):
            candidate = path[len(marker) :].split("/", 1)[0]
            if len(candidate) == 64 and all(c in "0123456789abcdef" for c in candidate):
                return candidate
    return None


def build_log(build_id: str) -> str:
    return f"{LOG_DIR}/build-{build_id}.log"


def build_exit(build_id: str) -> str:
    return f"{objdir(build_id)}/{BUILD_EXIT}"


def install_log(build_id: str, part: str = "") -> str:
    """``part`` tells apart the two in-place jobs (kernel, world)."""
    return f"{LOG_DIR}/install-{build_id}{'-' + part if part else ''}.log"


def install_exit(build_id: str, part: str = "") -> str:
    return f"{DB_DIR}/install-{build_id}{'-' + part if part else ''}.exit"


# -- packages (the ports half of HB 24.7; docs/packages.md) --------------------------

#: The ports tree's default place; fleet.yaml ``ports.tree`` may name another.
PORTS = "/usr/ports"
#: Package repositories on a build host, one directory per package set id, on
#: /usr/obj's own file system: they survive a BE switch like the builds, and
#: every other host of the set already mounts /usr/obj read-only at this path.
PKG_SETS = f"{OBJ}/packages"
#: Inside a package set's directory: the pkg repository (poudriere: a symlink
#: to the repository poudriere made; make: the PACKAGES directory itself).
PKG_SET_REPO = "repo"
#: The reconciler's poudriere: its BASEFS, its etc directory (``poudriere -e``,
#: holding poudriere.conf and poudriere.d/) and POUDRIERE_DATA.
POUDRIERE_BASE = f"{OBJ}/poudriere"
POUDRIERE_ETC = f"{POUDRIERE_BASE}/etc"
POUDRIERE_DATA = f"{POUDRIERE_BASE}/data"
#: ``poudriere ports -p``: the shared tree, registered with ``-m null`` (no '-' or '.').
POUDRIERE_PORTS_TREE = "reconciler"
#: The repository's name in pkg.conf terms, and the file that configures it on every host.
PKG_REPO_NAME = "reconciler"
PKG_REPO_CONF = "/usr/local/etc/pkg/repos/reconciler.conf"
#: ``key=value`` lines: the package set a root file system carries (``pkgset=<id>``)
#: and the origins the reconciler installed (``packages=a/b c/d@f``); only those
#: are ever removed. Written next to MARKER, inside the new BE or the live root.
PKG_MARKER = f"{DB_DIR}/packages"
#: daemon(8) pidfile of the detached package build.
PACKAGES_PIDFILE = "/var/run/reconciler-packages.pid"


def pkg_set_dir(pkgset_id: str) -> str:
    """``/usr/obj/packages/<package set id>``: its repository and its .reconciler/ records."""
    return f"{PKG_SETS}/{pkgset_id}"


def pkg_repo(pkgset_id: str) -> str:
    """The repository path every host of the set reads (``file://`` + this)."""
    return f"{pkg_set_dir(pkgset_id)}/{PKG_SET_REPO}"


def pkg_inputs(pkgset_id: str) -> str:
    return f"{pkg_set_dir(pkgset_id)}/{BUILD_INPUTS}"


def pkg_exit(pkgset_id: str) -> str:
    return f"{pkg_set_dir(pkgset_id)}/{BUILD_EXIT}"


def pkg_jail(build_id: str) -> str:
    """The poudriere jail made from a world build (jail(8) names take no '.')."""
    return f"rc{short(build_id)}"


def pkg_setname(pkgset_id: str) -> str:
    """``poudriere bulk -z``: names the set's make.conf and options in poudriere.d/."""
    return short(pkgset_id)


def poudriere_repo(build_id: str, pkgset_id: str) -> str:
    """Where poudriere bulk puts it: ``${POUDRIERE_DATA}/packages/<jail>-<tree>-<set>``."""
    master = f"{pkg_jail(build_id)}-{POUDRIERE_PORTS_TREE}-{pkg_setname(pkgset_id)}"
    return f"{POUDRIERE_DATA}/packages/{master}"


def packages_log(pkgset_id: str) -> str:
    return f"{LOG_DIR}/packages-{pkgset_id}.log"


def pkg_install_log(pkgset_id: str) -> str:
    return f"{LOG_DIR}/pkg-install-{pkgset_id}.log"


def pkg_install_exit(pkgset_id: str) -> str:
    return f"{DB_DIR}/pkg-install-{pkgset_id}.exit"
