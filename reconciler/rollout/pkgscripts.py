"""The package build and install scripts, as pure command builders (the ports half of HB 24.7).

As in scripts.py, every script is a fixed text and every value reaches it as
a positional parameter; the long jobs run under daemon(8) through
``scripts.detached``, so a dropped connection does not stop them and the
reconciler re-attaches by the exit file (docs/remote-contract.md,
docs/packages.md).

Build, on the build host, after the world build of the same build id:

- poudriere (poudriere-jail(8), -ports(8), -bulk(8)): a jail made from
  the already built world (``MAKEOBJDIRPREFIX=/usr/obj/<build id> poudriere
  jail -c -m src=/usr/src``, skipped when it exists), the shared tree
  registered once (``ports -c -m null -M TREE``), then ``bulk -j JAIL -p
  TREE -z SET -f ORIGINS``; the set's ``repo`` link then points at the
  repository poudriere committed.
- make (HB 24.7's plain way): ``make package-recursive`` in each port with
  PACKAGES, __MAKE_CONF and PORT_DBDIR set to the set's files, then ``pkg
  repo`` (signed with the set's key). It installs the ports' dependencies
  (and pkg) on the build host itself and builds against the build host's
  running world, which is why poudriere is the default.

Install: ``pkg -c MNT`` into a mounted boot environment, not ``pkg -r
MNT``. Both keep the database in the BE (/var/db/pkg under the root), but
``-r`` reads the *running* system's repository files (REPOS_DIR is not
relative to rootdir, libpkg/pkg_config.c) and runs package scripts on the
running system with only PKG_ROOTDIR to tell them otherwise
(libpkg/scripts.c); ``-c`` chroots first, so the BE's own reconciler.conf
names the repository and every script (user creation, ldconfig, ...) acts
on the BE: the running system stays untouched, as beinstall.sh promises.
For that the repository must be visible inside the chroot: /usr/obj is
nullfs-mounted read-only at the same path into the BE (beinstall.sh mounts
/usr/src and /usr/obj the same way), with devfs on its /dev. pkg(8) itself
must exist on the running system (``pkg -c`` runs the host's binary); a host
without it is bootstrapped from the set's repository first (``pkg add
REPO/Latest/pkg.pkg``, pkg(7)). In place: the same steps on the live root.

Callers create LOG_DIR and DB_DIR first (``scripts.prepare_dirs``), as for
the world jobs; the package build's own directory comes with the files
render.package_build_files names.

Only what the reconciler installed is ever removed: the planner passes the
origins of the previous record (remote.PKG_MARKER) that are no longer
listed; each is deleted when nothing else needs it (``pkg query %?r``),
otherwise only marked automatic (``pkg set -A 1``), because ``pkg delete``
would take the packages that depend on it along.
"""

from __future__ import annotations

from reconciler import remote
from reconciler.remote import short
from reconciler.rollout.scripts import Job, be_world_script, detached, install_job
from reconciler.transport.command import sh


def packages_job(pkgset_id: str) -> Job:
    return Job(
        name=f"packages {short(pkgset_id)}",
        pidfile=remote.PACKAGES_PIDFILE,
        log=remote.packages_log(pkgset_id),
        exitfile=remote.pkg_exit(pkgset_id),
    )


def pkg_install_job(pkgset_id: str) -> Job:
    return Job(
        name=f"pkg install {short(pkgset_id)}",
        pidfile=remote.INSTALL_PIDFILE,
        log=remote.pkg_install_log(pkgset_id),
        exitfile=remote.pkg_install_exit(pkgset_id),
    )


def inputs_text(
    *, pkgset_id: str, build_id: str, ports_revision: str, method: str, origins: tuple[str, ...]
) -> str:
    """``.reconciler/inputs`` of a package set (the started= line is added by the script)."""
    return (
        f"pkgset={pkgset_id}\nbuild={build_id}\nports_revision={ports_revision}\n"
        f"method={method}\norigins={' '.join(origins)}\n"
    )


_POUDRIERE = """
obj=$1; etc=$2; jail=$3; ptree=$4; setname=$5; tree=$6; setdir=$7; prepo=$8; inputs=$9
meta="$setdir/.reconciler"
mkdir -p "$meta"
{ printf '%s' "$inputs"; echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; } > "$meta/inputs"
if ! poudriere -e "$etc" jail -l -n -q | grep -qx "$jail"; then
  echo ">>> reconciler: poudriere jail -c -j $jail from $obj"
  env MAKEOBJDIRPREFIX="$obj" poudriere -e "$etc" jail -c -j "$jail" -m src=/usr/src
fi
if ! poudriere -e "$etc" ports -l -n | grep -qx "$ptree"; then
  echo ">>> reconciler: poudriere ports -c -p $ptree -m null -M $tree"
  poudriere -e "$etc" ports -c -p "$ptree" -m null -M "$tree"
fi
echo ">>> reconciler: poudriere bulk -j $jail -p $ptree -z $setname"
poudriere -e "$etc" bulk -j "$jail" -p "$ptree" -z "$setname" -f "$meta/origins"
ln -sfn "$prepo" "$setdir/repo"
echo ">>> reconciler: package set repository $setdir/repo"
"""


def poudriere_build_command(build_id: str, pkgset_id: str, tree: str, inputs: str) -> list[str]:
    """The detached package build with poudriere (the set's files are written beforehand)."""
    return detached(
        packages_job(pkgset_id),
        _POUDRIERE,
        remote.objdir(build_id),
        remote.POUDRIERE_ETC,
        remote.pkg_jail(build_id),
        remote.POUDRIERE_PORTS_TREE,
        remote.pkg_setname(pkgset_id),
        tree,
        remote.pkg_set_dir(pkgset_id),
        remote.poudriere_repo(build_id, pkgset_id),
        inputs,
    )


# PACKAGES and WRKDIRPREFIX on the command line: it beats a make.conf setting
# (the set's make.conf may carry the host's own) and reaches the dependencies'
# sub-makes. A fresh WRKDIRPREFIX per set keeps the ports tree clean and no
# earlier set's cookies stop a port from being packaged into this PACKAGES.
_MAKE = """
tree=$1; setdir=$2; inputs=$3; key=$4
meta="$setdir/.reconciler"; repo="$setdir/repo"; work="$setdir/.reconciler/work"
mkdir -p "$meta" "$repo"
{ printf '%s' "$inputs"; echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; } > "$meta/inputs"
export __MAKE_CONF="$meta/make.conf" PORT_DBDIR="$meta/options" BATCH=yes
for spec in ports-mgmt/pkg $(cat "$meta/origins"); do
  case "$spec" in *@*) origin=${spec%@*}; flavor=${spec#*@};; *) origin=$spec; flavor=;; esac
  echo ">>> reconciler: make package-recursive in $tree/$origin${flavor:+ (FLAVOR=$flavor)}"
  make -C "$tree/$origin" PACKAGES="$repo" WRKDIRPREFIX="$work" FLAVOR="$flavor" \\
    package-recursive
done
rm -rf "$work"
echo ">>> reconciler: pkg repo $repo${key:+ (signed with $key)}"
pkg repo "$repo" ${key:+"$key"}
echo ">>> reconciler: package set repository $repo"
"""


def make_build_command(pkgset_id: str, tree: str, inputs: str, key: str = "") -> list[str]:
    """The detached package build the handbook's way, signed with ``key`` when given.

    ``make package-recursive`` in ports-mgmt/pkg and each origin (Mk/bsd.port.mk:
    the packages land in ``${PACKAGES}/All``, pkg's ``Latest/pkg.pkg`` link
    with them; dependencies are installed on the build host to build), then
    ``pkg repo REPO [KEY]`` (pkg-repo(8)) writes the catalogue beside them.
    """
    return detached(
        packages_job(pkgset_id), _MAKE, tree, remote.pkg_set_dir(pkgset_id), inputs, key
    )


# The package steps on one root; $pkg is "pkg" (live) or "pkg -c $mnt" (a BE).
# Arguments after the fixed ones: N, the N origins to install, then those to drop.
_PACKAGES = """
repo=$1; conf=$2; confpath=$3; marker=$4; markerpath=$5; n=$6; shift 6
drops=$(mktemp /tmp/reconciler-drop.XXXXXX)
i=0; for a do i=$((i+1)); if [ "$i" -gt "$n" ]; then printf '%s\\n' "$a"; fi; done > "$drops"
total=$#; i=0
for a do i=$((i+1)); if [ "$i" -le "$n" ]; then set -- "$@" "$a"; fi; done
shift "$total"
if ! pkg -N >/dev/null 2>&1; then
  echo ">>> reconciler: bootstrapping pkg from $repo"
  pkg add "$repo/Latest/pkg.pkg"
fi
mkdir -p "$root${confpath%/*}"
printf '%s' "$conf" > "$root$confpath"
echo ">>> reconciler: pkg upgrade"
$pkg upgrade -y -r reconciler
echo ">>> reconciler: pkg install $*"
$pkg install -y -r reconciler ports-mgmt/pkg "$@"
while read -r o; do
  if [ -z "$o" ] || ! $pkg query '%n' "$o" >/dev/null 2>&1; then continue; fi
  if [ "$($pkg query '%?r' "$o")" = 0 ]; then
    echo ">>> reconciler: pkg delete $o"; $pkg delete -y "$o"
  else
    echo ">>> reconciler: pkg set -A 1 $o (still needed)"; $pkg set -y -A 1 "$o"
  fi
done < "$drops"
rm -f "$drops"
mkdir -p "$root${markerpath%/*}"
printf '%s' "$marker" > "$root$markerpath"
echo ">>> reconciler: packages installed"
"""

_INTO_BE = """
be=$1; obj=$2; shift 2
cleanup() {
  status=$?
  umount "$mnt/dev" >/dev/null 2>&1 || true
  umount "$mnt$obj" >/dev/null 2>&1 || true
  if [ "$status" -ne 0 ]; then bectl umount -f "$be" >/dev/null 2>&1 || true; fi
}
mnt=$(bectl mount "$be")
trap cleanup EXIT
mkdir -p "$mnt$obj" "$mnt/dev"
mount -t nullfs -o ro "$obj" "$mnt$obj"
mount -t devfs devfs "$mnt/dev"
root=$mnt; pkg="pkg -c $mnt"
echo ">>> reconciler: packages into $be ($mnt)"
"""

_TAIL = """
umount "$mnt/dev"; umount "$mnt$obj"
trap - EXIT
bectl umount "$be"
"""


def _package_args(
    pkgset_id: str, conf: str, marker: str, install: tuple[str, ...], drop: tuple[str, ...]
) -> list[str]:
    return [
        remote.pkg_repo(pkgset_id),
        conf,
        remote.PKG_REPO_CONF,
        marker,
        remote.PKG_MARKER,
        str(len(install)),
        *install,
        *drop,
    ]


def be_packages_command(
    pkgset_id: str,
    be: str,
    conf: str,
    marker: str,
    install: tuple[str, ...],
    drop: tuple[str, ...] = (),
) -> list[str]:
    """Install the set's packages into boot environment ``be`` (made, unmounted) with pkg -c.

    ``conf`` is render.pkg_repo_conf's text, written into the BE; ``marker``
    is :func:`marker_text`'s; ``drop`` the origins the reconciler installed
    before and no longer lists. A failure leaves the BE unmounted, for the
    caller to destroy (it is not bootable as the generation wants it).
    """
    body = _INTO_BE + _PACKAGES + _TAIL
    return detached(
        pkg_install_job(pkgset_id),
        body,
        be,
        remote.OBJ,
        *_package_args(pkgset_id, conf, marker, install, drop),
    )


def inplace_packages_command(
    pkgset_id: str, conf: str, marker: str, install: tuple[str, ...], drop: tuple[str, ...] = ()
) -> list[str]:
    """The same steps on the running system (in-place hosts: ``pkg upgrade``/``install``)."""
    body = 'root=; pkg="pkg"\n' + _PACKAGES
    return detached(
        pkg_install_job(pkgset_id), body, *_package_args(pkgset_id, conf, marker, install, drop)
    )


def marker_text(*, pkgset_id: str, origins: tuple[str, ...], when: str) -> str:
    """``/var/db/reconciler/packages``: the package set and exactly the origins it installed."""
    return f"pkgset={pkgset_id}\npackages={' '.join(origins)}\ninstalled={when}\n"


def prune_package_sets_command(keep: list[str], keep_jails: list[str]) -> list[str]:
    """Remove every package set not in ``keep`` (its poudriere repository too) and old jails.

    Only 64-hex directories under /usr/obj/packages and only the
    reconciler's ``rc<12 hex>`` jails are candidates; a repository link is
    followed only into poudriere's packages directory.
    """
    script = (
        "sets=$1; data=$2; etc=$3; n=$4; shift 4; "
        'cd "$sets" 2>/dev/null && for d in *; do '
        'case "$d" in *[!0-9a-f]*) continue;; esac; [ ${#d} -eq 64 ] || continue; '
        "keep=no; i=0; for k do i=$((i+1)); "
        'if [ "$i" -le "$n" ] && [ "$d" = "$k" ]; then keep=yes; fi; done; '
        'if [ "$keep" = yes ]; then continue; fi; '
        'r=$(readlink "$d/repo" 2>/dev/null) || r=; '
        'case "$r" in "$data"/packages/*) echo "removing $r"; rm -rf "${r:?}";; esac; '
        'echo "removing $sets/$d"; rm -rf "${sets:?}/$d"; done; '
        "command -v poudriere >/dev/null 2>&1 || exit 0; "
        'for j in $(poudriere -e "$etc" jail -l -n -q 2>/dev/null); do '
        'case "$j" in rc[0-9a-f]*) ;; *) continue;; esac; '
        "keep=no; i=0; for k do i=$((i+1)); "
        'if [ "$i" -gt "$n" ] && [ "$j" = "$k" ]; then keep=yes; fi; done; '
        'if [ "$keep" != yes ]; then echo "removing jail $j"; '
        'poudriere -e "$etc" jail -d -j "$j" -y; fi; '
        "done"
    )
    return sh(
        script,
        remote.PKG_SETS,
        remote.POUDRIERE_DATA,
        remote.POUDRIERE_ETC,
        str(len(keep)),
        *keep,
        *keep_jails,
    )


def ports_checkout_commands(
    tree: str, url: str, branch: str, revision: str, *, present: bool
) -> list[list[str]]:
    """Keep the src host's ports tree at ``revision``: clone when absent, fetch, check out.

    The same three git steps as /usr/src (rollout/source.py); the facts
    (facts/ports.py) say whether the tree is a git checkout (``present``).
    """
    steps = [] if present else [["git", "clone", "--no-checkout", url, tree]]
    return [
        *steps,
        ["git", "-C", tree, "fetch", "--quiet", url, branch],
        ["git", "-C", tree, "checkout", "--quiet", "--detach", revision],
    ]


# -- the packages as part of a boot-environment install (world and packages switch together) --

# Into a BE made just before (unmounted); on any failure the BE is destroyed, as
# beinstall.sh destroys a half-made one: the host keeps booting what it boots.
_INTO_NEW_BE = """
be=$1; obj=$2; shift 2
mnt=
cleanup() {
  status=$?
  if [ -n "$mnt" ]; then
    umount "$mnt/dev" >/dev/null 2>&1 || true
    umount "$mnt$obj" >/dev/null 2>&1 || true
  fi
  if [ "$status" -ne 0 ]; then
    bectl umount -f "$be" >/dev/null 2>&1 || true
    bectl destroy -F "$be" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
mnt=$(bectl mount "$be")
mkdir -p "$mnt$obj" "$mnt/dev"
mount -t nullfs -o ro "$obj" "$mnt$obj"
mount -t devfs devfs "$mnt/dev"
root=$mnt; pkg="pkg -c $mnt"
echo ">>> reconciler: packages into $be ($mnt)"
"""

# bectl(8) create without -e clones the booted BE: the running packages, and the
# reconciler's records of world and packages, are what pkg upgrade starts from.
_CLONE = """
be=$1
if bectl list -H | cut -f1 | grep -qx "$be"; then bectl destroy -F "$be"; fi
bectl create "$be"
echo ">>> reconciler: $be cloned from the running boot environment"
"""


# The world script takes $1..$7 and then its smoke checks as "$@" (scripts._BE_INSTALL):
# the package arguments are kept aside first, fixed in number (the origins as one
# word each list: validated origins have no space or glob character), and put back after.
_STASH = """
pk_be=$1; pk_obj=$2; pk_repo=$3; pk_conf=$4; pk_confpath=$5; pk_marker=$6
pk_markerpath=$7; pk_install=$8; pk_drop=$9
shift 9
"""
_RESTORE = """
set -f
n=0; for o in $pk_install; do n=$((n+1)); done
set -- "$pk_be" "$pk_obj" "$pk_repo" "$pk_conf" "$pk_confpath" "$pk_marker" \\
  "$pk_markerpath" "$n" $pk_install $pk_drop
set +f
"""


def be_install_with_packages_command(
    *,
    build_id: str,
    be: str,
    part: str,
    kernconf: str,
    marker: str,
    make_conf: str,
    src_conf: str,
    pkgset_id: str,
    conf: str,
    pkg_marker: str,
    install: tuple[str, ...],
    drop: tuple[str, ...],
    smoke_checks: tuple[str, ...] = (),
) -> list[str]:
    """World, kernel (smoke-tested) and the set's packages into the new BE ``be``: one job."""
    body = _STASH + be_world_script() + _RESTORE + _INTO_NEW_BE + _PACKAGES + _TAIL
    return detached(
        install_job(build_id, part),
        body,
        be,
        remote.OBJ,
        remote.pkg_repo(pkgset_id),
        conf,
        remote.PKG_REPO_CONF,
        pkg_marker,
        remote.PKG_MARKER,
        " ".join(install),
        " ".join(drop),
        be,
        remote.objdir(build_id),
        kernconf,
        marker,
        remote.MARKER,
        make_conf,
        src_conf,
        *smoke_checks,
    )


def be_clone_packages_command(
    *,
    build_id: str,
    be: str,
    part: str,
    pkgset_id: str,
    conf: str,
    pkg_marker: str,
    install: tuple[str, ...],
    drop: tuple[str, ...],
) -> list[str]:
    """A packages-only change: ``be`` cloned from the running BE, its packages upgraded in it."""
    return detached(
        install_job(build_id, part),
        _CLONE + _INTO_NEW_BE + _PACKAGES + _TAIL,
        be,
        remote.OBJ,
        *_package_args(pkgset_id, conf, pkg_marker, install, drop),
    )
