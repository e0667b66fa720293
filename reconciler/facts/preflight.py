"""What an administrator checks by hand before an update, read as facts (probes + parsers).

The planner's preflight (reconciler.plan.preflight) decides from these; this
module only reads, in FreeBSD's own output formats:

- src host: ``command -v git`` (the reconciler reads and checks out /usr/src
  with git; base FreeBSD has none), ``git -C /usr/src rev-parse
  --is-shallow-repository`` (``true``/``false``), and ``git -C /usr/src show
  REV:sys/sys/param.h`` for the pinned revision's ``#define __FreeBSD_version
  NNNNNNN``. That last one reads the revision's own file whatever is checked
  out, without changing the work tree: /usr/src/sys/sys/param.h on disk is the
  current checkout, which differs from the pinned revision exactly when an
  update is pending. Before the revision has been fetched it is unknown
  (``None``); apply reads it again after the source stage fetched it;
- build host: ``df -k /usr/obj`` (bin/df/df.c prtstat(): ``Filesystem
  1024-blocks Used Avail Capacity Mounted on``, one line per file system)
  and the size of the newest finished build, ``du -sk /usr/obj/<id>``;
- boot-environment hosts: ``bectl check`` (sbin/bectl/bectl.c: exit 0 when
  libbe can work on this system, silently non-zero when not) and ``zfs list
  -Hp -o name,avail,refer /`` (zfs_do_list takes paths: the dataset of the
  booted BE, tab-separated exact bytes; a new BE needs room for a world as big
  as the booted one refers to);
- every host: ``sysrc nfs_server_enable mountd_enable rpcbind_enable
  nfs_client_enable`` (usr.sbin/sysrc/sysrc: ``NAME: value`` per line, from
  rc.conf over /etc/defaults/rc.conf; a name set nowhere prints ``sysrc:
  unknown variable 'NAME'`` on stderr, exit 1, and the others still print, so
  the names are read back, not counted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.facts.probe import Output, Probe
from reconciler.remote import BUILD_EXIT, OBJ, SRC
from reconciler.transport.command import sh

#: rc.conf(5) knobs of the build set's NFS (HB 24.7; libexec/rc/rc.d/nfsd, mountd, nfsclient).
NFS_KNOBS = ("nfs_server_enable", "mountd_enable", "rpcbind_enable", "nfs_client_enable")

# The newest build directory whose make ended with status 0, and its size.
_NEWEST_BUILD = (
    'for id in $(ls -1t "$1"); do case $id in *[!0-9a-f]*) continue;; esac; '
    '[ ${#id} -eq 64 ] || continue; '
    '[ "$(head -n 1 "$1/$id/$2" 2>/dev/null)" = 0 ] || continue; '
    'du -sk "$1/$id"; break; done'
)


def src_probes(revision: str) -> tuple[Probe, ...]:
    return (
        Probe("git-path", ("command", "-v", "git")),
        Probe("src-shallow", ("git", "-C", SRC, "rev-parse", "--is-shallow-repository")),
        Probe("src-param", ("git", "-C", SRC, "show", f"{revision}:sys/sys/param.h")),
    )


BUILD_PROBES = (
    Probe("obj-df", ("df", "-k", OBJ)),
    Probe("obj-newest", tuple(sh(_NEWEST_BUILD, OBJ, BUILD_EXIT))),
)
BE_PROBES = (
    Probe("bectl-check", ("bectl", "check")),
    Probe("be-root", ("zfs", "list", "-Hp", "-o", "name,avail,refer", "/")),
)
KNOB_PROBES = (Probe("nfs-knobs", ("sysrc", *NFS_KNOBS)),)


@dataclass(frozen=True)
class SrcChecks:
    """The src host's tools and tree."""

    git: str | None  # where ``command -v git`` found it; None: not installed
    shallow: bool | None = None  # None: no repository to ask
    #: the revision ``pinned_osreldate`` was read for (recorded facts may be older)
    revision: str | None = None
    #: __FreeBSD_version in sys/sys/param.h at ``revision``; None: not in /usr/src yet
    pinned_osreldate: int | None = None

    def osreldate_at(self, revision: str) -> int | None:
        return self.pinned_osreldate if self.revision == revision else None


@dataclass(frozen=True)
class Space:
    """One ``df -k`` line."""

    filesystem: str
    total_kb: int
    used_kb: int
    avail_kb: int  # may be negative: UFS past its minfree reserve
    mountpoint: str


@dataclass(frozen=True)
class ObjSpace:
    """The build host's /usr/obj: its file system's space and what one build takes."""

    space: Space | None
    newest_build: str | None = None
    newest_build_kb: int | None = None  # None: no finished build to measure


@dataclass(frozen=True)
class BootPool:
    """A boot-environment host's pool, as bectl and zfs see it."""

    usable: bool  # bectl check exited 0
    dataset: str | None = None  # the booted BE's dataset, e.g. zroot/ROOT/default
    avail_bytes: int | None = None
    refer_bytes: int | None = None  # what the booted BE refers to: one world's size


@dataclass(frozen=True)
class RcKnobs:
    """rc.conf values as sysrc printed them (a knob set nowhere is absent)."""

    values: dict[str, str] = field(default_factory=dict)

    def enabled(self, name: str) -> bool:
        """rc.subr's checkyesno: YES, TRUE, ON or 1 in any case; anything else is off."""
        return self.values.get(name, "").strip().lower() in ("yes", "true", "on", "1")


_OSRELDATE = re.compile(r"^#define[ \t]+__FreeBSD_version[ \t]+(\d+)", re.M)
_DF_LINE = re.compile(
    r"^(?P<fs>\S.*?)\s+(?P<total>-?\d+)\s+(?P<used>-?\d+)\s+(?P<avail>-?\d+)"
    r"\s+(?P<capacity>\d+)%\s+(?P<mnt>/.*)$"
)
_DU_LINE = re.compile(r"^(?P<kb>\d+)\s+(?P<path>/\S*)$")


def parse_param_h(text: str) -> int | None:
    """``#define __FreeBSD_version 1402000`` (sys/sys/param.h) -> 1402000."""
    match = _OSRELDATE.search(text)
    return int(match.group(1)) if match else None


def parse_df(text: str) -> Space | None:
    """The first file system line of ``df -k PATH`` (the header line is skipped)."""
    for line in text.splitlines():
        match = _DF_LINE.match(line.rstrip())
        if match:
            return Space(
                match["fs"],
                int(match["total"]),
                int(match["used"]),
                int(match["avail"]),
                match["mnt"],
            )
    return None


def parse_du(text: str) -> tuple[str, int] | None:
    """``du -sk /usr/obj/<id>`` -> (id, KiB)."""
    for line in text.splitlines():
        match = _DU_LINE.match(line.strip())
        if match:
            return match["path"].rstrip("/").rsplit("/", 1)[-1], int(match["kb"])
    return None


def parse_zfs_root(text: str) -> tuple[str, int, int] | None:
    """``zfs list -Hp -o name,avail,refer /`` -> (dataset, avail bytes, refer bytes)."""
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) >= 3 and cols[1].strip().isdigit() and cols[2].strip().isdigit():
            return cols[0].strip(), int(cols[1]), int(cols[2])
    return None


def parse_sysrc(text: str) -> dict[str, str]:
    """``NAME: value`` lines (sysrc without -n) -> {NAME: value}."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            values[name] = value.strip()
        elif line.endswith(":") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*:", line):
            values[line[:-1]] = ""  # set to the empty string
    return values


def parse_src(outputs: Mapping[str, Output], revision: str) -> SrcChecks:
    found = outputs["git-path"]
    git = found.stdout.strip().splitlines()[0] if found.ok and found.stdout.strip() else None
    shallow_out = outputs["src-shallow"]
    word = shallow_out.stdout.strip()
    shallow = {"true": True, "false": False}.get(word) if shallow_out.ok else None
    param = outputs["src-param"]
    osreldate = parse_param_h(param.stdout) if param.ok else None
    return SrcChecks(git, shallow, revision, osreldate)


def parse_obj(outputs: Mapping[str, Output]) -> ObjSpace:
    df = outputs["obj-df"]
    space = parse_df(df.stdout) if df.ok else None
    newest = parse_du(outputs["obj-newest"].stdout)
    if newest is None:
        return ObjSpace(space)
    return ObjSpace(space, newest[0], newest[1])


def parse_boot_pool(outputs: Mapping[str, Output]) -> BootPool:
    usable = outputs["bectl-check"].ok
    root = outputs["be-root"]
    parsed = parse_zfs_root(root.stdout) if root.ok else None
    if parsed is None:
        return BootPool(usable)
    return BootPool(usable, *parsed)


def parse_knobs(outputs: Mapping[str, Output]) -> RcKnobs | None:
    """None when sysrc did not run; exit 1 only says some name was unknown (the rest printed)."""
    out = outputs["nfs-knobs"]
    if out.exit_code not in (0, 1):
        return None
    return RcKnobs(parse_sysrc(out.stdout))
