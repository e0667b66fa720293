"""Preflight: what will fail, said before anything is touched (pure).

The checks a FreeBSD administrator makes by hand before an update, each a
:class:`Finding` naming the host, what is wrong and the fix. A ``problem``
blocks the build set's rollout: ``apply`` halts the set before its first
stage and changes nothing on any of its hosts (reconciler.rollout.engine);
a ``warning`` is shown and the rollout goes on. Facts not read (another role,
an unreachable host, facts recorded before these checks existed) give no
finding. The checks, with the FreeBSD behaviour they rest on
(docs/freebsd-commands.md has the sources):

- src host: git installed (base has none; the reconciler reads and checks
  out /usr/src with it) - problem; /usr/src a shallow clone (newvers.sh then
  leaves ``n<count>`` out of uname -v) - warning;
- build host: /usr/obj on a file system of its own on a boot-environment set
  (else it lives in the BE and a BE switch loses the builds) - problem; room
  in /usr/obj for one more build, measured by the newest one - problem;
- boot-environment hosts: ``bectl check`` passes - problem; room in the pool
  for a new BE as big as the booted one - problem; the ESP's loader not older
  than the world's /boot/loader.efi (an old loader may ignore ``bectl
  activate -t``) - warning;
- NFS servers whose exports are in place: ``nfs_server_enable`` (rc.d/nfsd;
  without it nothing serves after the next boot) - problem, ``mountd_enable``
  and ``rpcbind_enable`` (rc.d/nfsd force-starts them) - warning; clients
  whose fstab lines are in place: ``nfs_client_enable`` (rc.d/mountcritremote
  mounts them anyway) - warning. Where a step of this plan writes the exports
  or the fstab lines, it sets the knobs too (reconciler.rollout.source);
- hosts that install: a running userland (``uname -U``) newer than the
  pinned revision's ``__FreeBSD_version`` is a downgrade - problem, or a
  warning under ``rollout.allow_downgrade``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reconciler.config import render
from reconciler.config.model import BuildSet, Config, Host
from reconciler.facts.host import HostFacts
from reconciler.facts.loader import older
from reconciler.facts.mounts import parse_fstab
from reconciler.plan.model import StagePlan
from reconciler.plan.packages import missing_origins
from reconciler.remote import short
from reconciler.vocabulary import INSTALL_STEPS, StepKind

Level = Literal["problem", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    host: str
    #: a stable name of the check (with ``host``, the key a recorded halt is compared by)
    check: str
    what: str
    fix: str

    @property
    def key(self) -> str:
        return f"{self.host}:{self.check}"

    @property
    def text(self) -> str:
        return f"{self.host}: {self.what} (fix: {self.fix})"


@dataclass(frozen=True)
class Work:
    """What the set's plan does, as far as the checks care (None in preflight(): all of it)."""

    builds: bool
    installs: frozenset[str]  # hosts with an install step
    #: hosts serving this set over NFS whose exports no step of the plan writes
    servers: frozenset[str] = frozenset()
    #: hosts mounting from this set's servers whose fstab lines are all in place
    clients: frozenset[str] = frozenset()


def _kib(value: int) -> str:
    """KiB for people: df -h's units (1024-based)."""
    size, unit = float(value), "K"
    for unit in ("K", "M", "G", "T"):
        if abs(size) < 1024 or unit == "T":
            break
        size /= 1024
    return f"{size:.1f}{unit}" if unit != "K" else f"{value}K"


def _reachable(facts: Mapping[str, HostFacts], name: str) -> HostFacts | None:
    hf = facts.get(name)
    return hf if hf is not None and hf.reachable else None


def _src(config: Config, facts: Mapping[str, HostFacts], work: Work) -> list[Finding]:
    hf = _reachable(facts, config.src_host)
    checks = hf.src_checks if hf else None
    if checks is None:
        return []
    found = []
    if checks.git is None:
        found.append(
            Finding(
                "problem",
                config.src_host,
                "git",
                "git is not installed (command -v git finds none; FreeBSD's base has no git), "
                "and the reconciler reads and checks out /usr/src with it",
                "pkg install git (or git-lite)",
            )
        )
    if checks.shallow and work.builds:
        found.append(
            Finding(
                "warning",
                config.src_host,
                "shallow",
                "/usr/src is a shallow clone: kernels built from it carry no n<count> in uname -v "
                "(sys/conf/newvers.sh), so they are verified by the hash alone, and a revision "
                "older than the clone's depth cannot be checked out",
                "git -C /usr/src fetch --unshallow",
            )
        )
    return found


def _build_host(bs: BuildSet, facts: Mapping[str, HostFacts], work: Work) -> list[Finding]:
    hf = _reachable(facts, bs.build_host)
    if hf is None:
        return []
    found = []
    if bs.rollout.install == "boot-environment" and hf.obj_own_filesystem is False:
        found.append(
            Finding(
                "problem",
                bs.build_host,
                "obj-fs",
                "/usr/obj is not its own file system, so it lives inside the boot environment "
                "(bsdinstall's ZFS layout has no /usr/obj dataset): a BE switch or rollback there "
                "loses the builds kept for rollbacks",
                "zfs create -o mountpoint=/usr/obj zroot/usr/obj (move what /usr/obj holds "
                "first), or mount a file system of its own there",
            )
        )
    space = hf.obj_space
    if work.builds and space and space.space and space.newest_build_kb is not None:
        free, need = space.space.avail_kb, space.newest_build_kb
        if free < need:
            found.append(
                Finding(
                    "problem",
                    bs.build_host,
                    "obj-space",
                    f"{space.space.filesystem} ({space.space.mountpoint}) has {_kib(free)} free, "
                    f"less than the {_kib(need)} the newest build "
                    f"({short(space.newest_build or '')}) took: the build would stop midway",
                    f"free space there: remove old builds from /usr/obj (rollout.keep_builds: "
                    f"{bs.rollout.keep_builds} are kept) or grow the file system",
                )
            )
    return found


def _boot_environments(bs: BuildSet, facts: Mapping[str, HostFacts], work: Work) -> list[Finding]:
    if bs.rollout.install != "boot-environment":
        return []
    found = []
    for host in bs.hosts:
        hf = _reachable(facts, host.name)
        if hf is None:
            continue
        pool = hf.boot_pool
        usable = pool.usable if pool else (hf.boot_envs.available if hf.boot_envs else None)
        if usable is False:
            found.append(
                Finding(
                    "problem",
                    host.name,
                    "bectl",
                    f"{'bectl check' if pool else 'bectl list'} fails: the host cannot use boot "
                    "environments (no ZFS root in a pool/ROOT/<name> layout), but the set "
                    "installs into boot environments",
                    f"install: in-place in buildsets/{bs.name}/buildset.yaml, or put the host on "
                    "ZFS boot environments (bsdinstall's default)",
                )
            )
            continue
        if host.name not in work.installs:
            continue
        avail, refer = (pool.avail_bytes, pool.refer_bytes) if pool else (None, None)
        if avail is not None and refer is not None and avail < refer:
            found.append(
                Finding(
                    "problem",
                    host.name,
                    "be-space",
                    f"the pool of {pool.dataset if pool else '/'} has {_kib(avail // 1024)} "
                    f"free, less than the {_kib(refer // 1024)} the booted boot environment "
                    "holds: a new one with a new world will not fit",
                    "bectl destroy boot environments no longer needed (bectl list), or free "
                    "space in the pool",
                )
            )
        found += _loader(host, hf)
    return found


def _loader(host: Host, hf: HostFacts) -> list[Finding]:
    loaders = hf.loaders
    if loaders is None or loaders.world is None:
        return []
    stale = [esp for esp in loaders.esp if older(esp, loaders.world)]
    if not stale:
        return []
    first = stale[0]
    others = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
    return [
        Finding(
            "warning",
            host.name,
            "loader",
            f"the loader on the EFI system partition, {first.path}{others} (Revision "
            f"{first.revision}, built {first.built or 'reproducibly'}), is older than this "
            f"world's /boot/loader.efi (built {loaders.world.built or 'reproducibly'}), and "
            "installworld never updates it: an old loader may ignore the one-shot activation "
            "(bectl activate -t) and boot the old BE, so the host would fail verification",
            f"cp /boot/loader.efi {first.path} (loader.efi(8)), after each world update",
        )
    ]


def _nfs(facts: Mapping[str, HostFacts], work: Work) -> list[Finding]:
    found = []
    for name in sorted(work.servers):
        hf = _reachable(facts, name)
        knobs = hf.rc_knobs if hf else None
        if knobs is None:
            continue
        off = [k for k in ("rpcbind_enable", "mountd_enable") if not knobs.enabled(k)]
        if not knobs.enabled("nfs_server_enable"):
            found.append(
                Finding(
                    "problem",
                    name,
                    "nfs-server",
                    "its /etc/exports serves the set, but nfs_server_enable is not YES in "
                    "rc.conf: after its next boot no nfsd runs (libexec/rc/rc.d/nfsd) and the "
                    "clients cannot mount /usr/src or /usr/obj",
                    "sysrc nfs_server_enable=YES mountd_enable=YES rpcbind_enable=YES",
                )
            )
        elif off:
            found.append(
                Finding(
                    "warning",
                    name,
                    "nfs-server",
                    f"{' and '.join(off)} not YES in rc.conf: rc.d/nfsd starts them anyway "
                    "(force_depend), with a complaint at every boot",
                    "sysrc " + " ".join(f"{k}=YES" for k in off),
                )
            )
    for name in sorted(work.clients):
        hf = _reachable(facts, name)
        knobs = hf.rc_knobs if hf else None
        if knobs is not None and not knobs.enabled("nfs_client_enable"):
            found.append(
                Finding(
                    "warning",
                    name,
                    "nfs-client",
                    "nfs_client_enable is not YES in rc.conf: rc.d/mountcritremote still mounts "
                    "the fstab lines at boot, but rc.d/nfsclient's setup is skipped (HB 24.7 "
                    "enables it on every client)",
                    "sysrc nfs_client_enable=YES",
                )
            )
    return found


def _downgrades(
    config: Config, bs: BuildSet, facts: Mapping[str, HostFacts], work: Work
) -> list[Finding]:
    installing = [h for h in bs.hosts if h.name in work.installs]
    if not installing:
        return []
    src = _reachable(facts, config.src_host)
    checks = src.src_checks if src else None
    if checks is None:
        return []
    rev = config.source.revision
    pinned = checks.osreldate_at(rev)
    if pinned is None:
        return [
            Finding(
                "warning",
                config.src_host,
                "pinned-version",
                f"revision {rev[:12]} is not in /usr/src yet, so its __FreeBSD_version is "
                "unknown and the downgrade check waits: apply makes it once the source stage "
                "has fetched the revision, before the set's first stage",
                "nothing to do (or git -C /usr/src fetch, to see it in the plan)",
            )
        ]
    found = []
    for host in installing:
        hf = _reachable(facts, host.name)
        running = hf.versions.userland_osreldate if hf and hf.versions else None
        if running is None or running <= pinned:
            continue
        what = (
            f"runs a userland of __FreeBSD_version {running} (uname -U), newer than the "
            f"{pinned} of the pinned revision {rev[:12]} (sys/sys/param.h): installing it is a "
            "downgrade, which FreeBSD does not support (etcupdate, packages built for the newer "
            "world)"
        )
        if bs.rollout.allow_downgrade:
            found.append(
                Finding(
                    "warning",
                    host.name,
                    "downgrade",
                    what + "; allowed by rollout.allow_downgrade",
                    f"pin a revision at least as new, or keep allow_downgrade in "
                    f"buildsets/{bs.name}/buildset.yaml",
                )
            )
        else:
            found.append(
                Finding(
                    "problem",
                    host.name,
                    "downgrade",
                    what,
                    "pin a revision at least as new in fleet.yaml, or set "
                    f"rollout.allow_downgrade: true in buildsets/{bs.name}/buildset.yaml",
                )
            )
    return found


def _origins(config: Config, bs: BuildSet, facts: Mapping[str, HostFacts]) -> list[Finding]:
    """Listed origins without a Makefile at the pinned ports revision (known once it is fetched)."""
    missing = missing_origins(config, bs, _reachable(facts, config.src_host))
    rev = config.ports.revision if config.ports else None
    return [
        Finding(
            "problem",
            config.src_host,
            f"origin {origin}",
            f"{origin} is not a port at ports revision {(rev or '')[:12]} (no Makefile there)",
            f"correct or remove it in buildsets/{bs.name}/buildset.yaml packages:",
        )
        for origin in missing
    ]


def work_of(
    config: Config,
    bs: BuildSet,
    facts: Mapping[str, HostFacts],
    stages: tuple[StagePlan, ...],
    servers: frozenset[str],
) -> Work:
    """What the set's plan (its stages) does; ``servers``: those whose exports are in place.

    A server's export step and a client's fstab step set the rc.conf knobs when
    they write the lines (reconciler.rollout.source), so the knobs are checked
    only where the lines are there already: the set's servers whose exports are
    all in place, the clients whose fstab has every line (a mount step that
    only mounts sets nothing).
    """

    def kinds(name: str) -> set[StepKind]:
        return {s.kind for st in stages for h in st.hosts if h.host == name for s in h.steps}

    clients = set()
    for host in bs.hosts:
        hf = facts.get(host.name)
        wanted = parse_fstab(render.fstab(config, host))
        fstab = hf.mounts.fstab if hf is not None and hf.reachable and hf.mounts else None
        if wanted and fstab is not None and all(line in fstab for line in wanted):
            clients.add(host.name)
    return Work(
        builds=any(s.kind == StepKind.BUILD for st in stages for s in st.steps),
        installs=frozenset(h.name for h in bs.hosts if kinds(h.name) & INSTALL_STEPS),
        servers=servers,
        clients=frozenset(clients),
    )


def everything(bs: BuildSet) -> Work:
    """The work of a plan that builds and installs every host (no plan at hand)."""
    return Work(builds=True, installs=frozenset(h.name for h in bs.hosts))


def preflight(
    config: Config, bs: BuildSet, facts: Mapping[str, HostFacts], work: Work | None = None
) -> list[Finding]:
    """Every finding for ``bs``: problems first, then warnings, each in the order checked."""
    todo = work if work is not None else everything(bs)
    found = (
        _src(config, facts, todo)
        + _build_host(bs, facts, todo)
        + _boot_environments(bs, facts, todo)
        + _nfs(facts, todo)
        + _downgrades(config, bs, facts, todo)
        + _origins(config, bs, facts)
    )
    return [f for f in found if f.level == "problem"] + [f for f in found if f.level == "warning"]
