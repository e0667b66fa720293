"""The shell scripts the reconciler runs on hosts, as pure command builders.

Every script is a fixed text; every value reaches it as a positional
parameter (``sh -c SCRIPT sh "$1" "$2" ...``), so no value from the config
repo is ever parsed as shell syntax. Jobs that must outlive the SSH session
(builds, installs) run under daemon(8) and record their exit status in a file,
so a reconciler that died or lost its connection re-attaches by reading it
(docs/remote-contract.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler import remote
from reconciler.remote import be_name as be_name
from reconciler.remote import objdir as objdir
from reconciler.remote import short
from reconciler.rollout import smoke
from reconciler.transport.command import sh


@dataclass(frozen=True)
class Job:
    """A detached job on a host: its pidfile, log and exit-status file."""

    name: str
    pidfile: str
    log: str
    exitfile: str


def build_job(build_id: str) -> Job:
    return Job(
        name=f"build {short(build_id)}",
        pidfile=remote.BUILD_PIDFILE,
        log=remote.build_log(build_id),
        exitfile=remote.build_exit(build_id),
    )


def install_job(build_id: str, part: str = "") -> Job:
    """``part`` tells apart the two in-place jobs (kernel, world)."""
    suffix = f"-{part}" if part else ""
    return Job(
        name=f"install{suffix} {short(build_id)}",
        pidfile=remote.INSTALL_PIDFILE,
        log=remote.install_log(build_id, part),
        exitfile=remote.install_exit(build_id, part),
    )


# The wrapper every detached job runs in: the body in a `set -e` subshell, its
# status written last, so "exit file present" means "finished" whatever killed
# the connection in between.
_WRAPPER = (
    'exitfile=$1; shift; rm -f "$exitfile"; ( set -e; %s ); '
    'echo $? > "$exitfile.new" && mv "$exitfile.new" "$exitfile"'
)


def detached(job: Job, body: str, *args: str) -> list[str]:
    """daemon(8) running ``body`` with ``args`` as $1..., detached from the session."""
    inner = sh(_WRAPPER % body, job.exitfile, *args)
    return ["daemon", "-f", "-p", job.pidfile, "-o", job.log, *inner]


def prepare_dirs(*paths: str) -> list[str]:
    return ["mkdir", "-p", *paths]


# make.conf(5)/src.conf(5): the build reads __MAKE_CONF and SRCCONF when set
# (share/mk/sys.mk, src.sys.env.mk): the rendered files kept beside the build.
_CONFS = (
    f'export __MAKE_CONF="$obj/{remote.BUILD_MAKE_CONF}" SRCCONF="$obj/{remote.BUILD_SRC_CONF}"; '
)

_BUILD = (
    "obj=$1; jobs=$2; kernconfs=$3; "
    + _CONFS
    + 'env MAKEOBJDIRPREFIX="$obj" make -C /usr/src -j "$jobs" buildworld buildkernel '
    'KERNCONF="$kernconfs"'
)


def build_command(build_id: str, jobs: int, kernconfs: tuple[str, ...]) -> list[str]:
    """buildworld + buildkernel of every kernconf into the build's own objdir."""
    return detached(build_job(build_id), _BUILD, objdir(build_id), str(jobs), " ".join(kernconfs))


# tools/build/beinstall.sh's sequence: the running system is left untouched;
# on any failure the half-made BE is destroyed and the log says why.
# installworld gets DB_FROM_SRC: without it Makefile.inc1's CHECK_UIDS/CHECK_GIDS
# (id -u, find -group) and install(1)'s owner lookups use the RUNNING system's
# users and groups, and a world that adds one fails ("Required X user is
# missing") although etcupdate -p just put it into the BE. DB_FROM_SRC
# (INSTALLFLAGS += -N ${.CURDIR}/etc) takes them from the source tree, as
# UPDATING's DESTDIR recipe does; beinstall.sh gets the same by running
# installworld in a chroot of the BE, which needs /usr/src, /usr/obj and devfs
# mounted into it and unmounted again on every failure path.
_BE_INSTALL = """
be=$1; obj=$2; kernconf=$3; marker=$4; markerpath=$5; makeconf=$6; srcconf=$7
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    bectl umount -f "$be" >/dev/null 2>&1 || true
    bectl destroy -F "$be" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
if bectl list -H | cut -f1 | grep -qx "$be"; then bectl destroy -F "$be"; fi
bectl create "$be"
mnt=$(bectl mount "$be")
export MAKEOBJDIRPREFIX="$obj"
%CONFS%
echo ">>> reconciler: installkernel $kernconf into $be ($mnt)"
make -C /usr/src installkernel KERNCONF="$kernconf" DESTDIR="$mnt"
echo ">>> reconciler: etcupdate -p"
etcupdate -p -s /usr/src -D "$mnt" -F
echo ">>> reconciler: installworld"
make -C /usr/src installworld DESTDIR="$mnt" DB_FROM_SRC=1
echo ">>> reconciler: etcupdate"
etcupdate -s /usr/src -D "$mnt" -F
if etcupdate status -D "$mnt" | grep -q '^  *C '; then
  echo "etcupdate left conflicts:"; etcupdate status -D "$mnt"; exit 3
fi
echo ">>> reconciler: delete-old"
make -C /usr/src delete-old DESTDIR="$mnt" BATCH_DELETE_OLD_FILES=yes
# The host's make.conf and src.conf go into the new BE, not the running /etc: a
# BE carries the config of its own world, and a rollback restores both.
printf '%s' "$makeconf" > "$mnt/etc/make.conf"
printf '%s' "$srcconf" > "$mnt/etc/src.conf"
mkdir -p "$mnt${markerpath%/*}"
printf '%s' "$marker" > "$mnt$markerpath"
shift 7
%SMOKE%
bectl umount "$be"
echo ">>> reconciler: installed into $be"
""".replace("%CONFS%", _CONFS).replace("%SMOKE%", smoke.SCRIPT)


def be_world_script() -> str:
    """The BE install's script ($1..$7 as be_install_command passes them), for composing."""
    return _BE_INSTALL


def be_install_command(
    build_id: str,
    kernconf: str,
    marker: str,
    make_conf: str,
    src_conf: str,
    smoke_checks: tuple[str, ...] = (),
) -> list[str]:
    """Install into a new BE, with the host's make.conf/src.conf written into it, and
    smoke-test it (reconciler/rollout/smoke.py) before it is unmounted."""
    return detached(
        install_job(build_id),
        _BE_INSTALL,
        be_name(build_id),
        objdir(build_id),
        kernconf,
        marker,
        remote.MARKER,
        make_conf,
        src_conf,
        *smoke_checks,
    )


# The handbook's in-place order, split at the reboot between kernel and world.
_INPLACE_KERNEL = """
obj=$1; kernconf=$2
%CONFS%
echo ">>> reconciler: installkernel $kernconf"
env MAKEOBJDIRPREFIX="$obj" make -C /usr/src installkernel KERNCONF="$kernconf"
""".replace("%CONFS%", _CONFS)

# etcupdate -B would run "make distrib-dirs distribution" in the build's objdir;
# share/mk/src.sys.obj.mk trusts an objdir it cannot write only when every
# target is an install target, so on an NFS client with a read-only /usr/obj
# it falls back to building in /usr/src (read-only too) and fails. Without -B
# etcupdate builds etc/ in a private objdir of its own (etcupdate.sh build_tree).
_INPLACE_WORLD = """
obj=$1; marker=$2; markerpath=$3; reuse=$4
export MAKEOBJDIRPREFIX="$obj"
%CONFS%
echo ">>> reconciler: etcupdate -p"
etcupdate -p
echo ">>> reconciler: installworld"
make -C /usr/src installworld
if [ "$reuse" = yes ]; then
  echo ">>> reconciler: etcupdate -B"; etcupdate -B
else
  echo ">>> reconciler: etcupdate"; etcupdate
fi
if etcupdate status | grep -q '^  *C '; then
  echo "etcupdate left conflicts:"; etcupdate status; exit 3
fi
echo ">>> reconciler: delete-old"
make -C /usr/src delete-old BATCH_DELETE_OLD_FILES=yes
mkdir -p "${markerpath%/*}"
printf '%s' "$marker" > "$markerpath"
""".replace("%CONFS%", _CONFS)


def inplace_kernel_command(build_id: str, kernconf: str) -> list[str]:
    return detached(install_job(build_id, "kernel"), _INPLACE_KERNEL, objdir(build_id), kernconf)


def inplace_world_command(build_id: str, marker: str, *, reuse_objdir: bool = False) -> list[str]:
    """installworld in place; ``reuse_objdir`` (etcupdate -B) only where /usr/obj is writable."""
    return detached(
        install_job(build_id, "world"),
        _INPLACE_WORLD,
        objdir(build_id),
        marker,
        remote.MARKER,
        "yes" if reuse_objdir else "no",
    )


def marker_text(*, build_id: str, revision: str, kernconf: str, generation: str, when: str) -> str:
    return (
        f"build={build_id}\nrevision={revision}\nkernconf={kernconf}\n"
        f"generation={generation}\ninstalled={when}\n"
    )


def job_state_command(job: Job) -> list[str]:
    """Prints ``exit N`` when finished, ``running`` while its process lives, else ``gone``."""
    # daemon(8) creates the pidfile empty (and locked) before it forks and
    # writes the pid only once the child exists: an empty pidfile is a job
    # starting, where pgrep -F exits 3 ("Pidfile ... is empty"). The exit file
    # is looked at again last: a job that ended between the looks wrote it
    # just before its process went away.
    script = (
        'if [ -f "$1" ]; then echo "exit $(cat "$1")"; '
        'elif pgrep -F "$2" >/dev/null 2>&1; then echo running; '
        'elif [ -f "$2" ] && [ ! -s "$2" ]; then echo running; '
        'elif [ -f "$1" ]; then echo "exit $(cat "$1")"; else echo gone; fi'
    )
    return sh(script, job.exitfile, job.pidfile)


def start_command(job: Job, *dirs: str) -> list[str]:
    """What jobs.start runs first: the job's directories, and no exit file of an earlier run.

    The wrapper removes the exit file too, but only once daemon(8) got the
    job going; a poll in between would read the old one as this job's end.
    """
    log_dir = job.log.rsplit("/", 1)[0]
    exit_dir = job.exitfile.rsplit("/", 1)[0]
    return sh(
        'exit=$1; shift; mkdir -p "$@" && rm -f "$exit"', job.exitfile, log_dir, exit_dir, *dirs
    )


def cancel_oneshot_command() -> list[str]:
    """``bectl activate -T``: drop a pending one-shot (next boot only) activation.

    libbe's be_activate sets bootfs and promotes on a permanent activation but
    leaves the pool's one-shot alone, so a rollback or a final permanent
    activation must cancel a pending ``activate -t`` first, or the next boot
    goes to the one-shot BE anyway. Exits 0 also when none is pending.
    """
    return ["bectl", "activate", "-T"]


def poll_command(job: Job, offset: int) -> list[str]:
    """The job's state line (as job_state_command), then its log from byte ``offset`` on.

    One round trip per poll: state first, so a "finished" state comes with
    the whole log (the exit file is written after the last log line).
    """
    state = job_state_command(job)[2]
    script = f'{state}; [ -f "$3" ] && tail -c "+$4" "$3" || true'
    return sh(script, job.exitfile, job.pidfile, job.log, str(offset + 1))


def health_command(check: str) -> list[str]:
    """A health check is a shell command line by definition: run it under sh -c, explicitly."""
    return ["sh", "-c", check]


def prune_builds_command(keep: list[str]) -> list[str]:
    """Remove every /usr/obj/<build id> not in ``keep`` (64-hex names only)."""
    script = (
        'obj=$1; shift; cd "$obj" || exit 0; for d in *; do '
        'case "$d" in *[!0-9a-f]*) continue;; esac; [ ${#d} -eq 64 ] || continue; '
        'keep=no; for k in "$@"; do [ "$d" = "$k" ] && keep=yes; done; '
        '[ "$keep" = yes ] || { echo "removing $obj/$d"; rm -rf "${obj:?}/$d"; }; done'
    )
    return sh(script, remote.OBJ, *keep)
