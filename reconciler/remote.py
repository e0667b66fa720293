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
