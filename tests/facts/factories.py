"""HostFacts for plan tests: a host exactly as the config wants it, then edits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reconciler.config import render
from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.facts.boot import BootFile
from reconciler.facts.bootenv import BootEnvironment, BootEnvironments
from reconciler.facts.etcfiles import EtcFiles
from reconciler.facts.host import HostFacts
from reconciler.facts.jobs import Jobs
from reconciler.facts.kernconf import KernelConfigs
from reconciler.facts.marker import InstalledMarker
from reconciler.facts.mounts import Mount, Mounts, parse_exports_text, parse_fstab
from reconciler.facts.objtree import Build, ObjTree
from reconciler.facts.source import SourceTree
from reconciler.facts.versions import KernelSource, Versions
from reconciler.plan import wanted_exports
from reconciler.progress import SetProgress
from reconciler.vocabulary import RolloutStatus

EXAMPLE = Path(__file__).resolve().parents[2] / "example-repo"
REVISION = "5a3e9b1c2d4f" + "0123456789abcdef0123456789ab"


def example_config(revision: str = REVISION) -> Config:
    config = load_config(EXAMPLE)
    return dataclasses.replace(config, source=dataclasses.replace(config.source, revision=revision))


def synced(config: Config, name: str) -> HostFacts:
    """Facts of a host that is exactly in the desired state."""
    host = config.host(name)
    bs = config.buildset(host.buildset)
    build = build_id(config, bs)
    is_src = name == config.src_host
    is_build = any(b.build_host == name for b in config.buildsets)
    nfs = parse_fstab(render.fstab(config, host))
    local = [Mount("zroot/ROOT/default", "/", "zfs", "rw")]
    if is_build:
        local.append(Mount("zroot/usr/obj", "/usr/obj", "zfs", "rw"))
    be_name = f"rc-{build[:12]}"
    envs = BootEnvironments(
        True,
        (
            BootEnvironment("default", "-", None, "1G", "2024-01-01 00:00"),
            BootEnvironment(be_name, "NR", "/", "1G", "2024-11-19 10:00"),
        ),
    )
    if bs.rollout.install == "in-place":
        envs = BootEnvironments(False)
        local = [Mount("/dev/ada0p2", "/", "ufs", "rw")]
    mounts = Mounts(tuple(local) + nfs, tuple(nfs))
    # What the planner wants this server to export, given its file systems (mountd).
    exports = wanted_exports(config, host, HostFacts(host=name, reachable=True, mounts=mounts))
    kernel_configs = None
    if is_src:
        kernel_configs = tuple(
            KernelConfigs(
                arch,
                ("GENERIC", "MINIMAL", *(k.ident for k in config.kernels)),
                {k.ident: k.text for k in config.kernels},
            )
            for arch in sorted({b.arch for b in config.buildsets})
        )
    return HostFacts(
        host=name,
        reachable=True,
        observed_at="2024-11-19T11:00:00Z",
        versions=Versions(
            "14.2-STABLE",
            "14.2-STABLE",
            "14.2-STABLE",
            host.kernconf,
            f"FreeBSD 14.2-STABLE #0 stable/14-n269870-{config.source.short}: date root@b:/usr/obj",
            KernelSource(config.source.short, 269870, "stable/14"),
            1402504,
            1402504,
            bs.arch,
        ),
        boot=BootFile("/boot/kernel/kernel"),
        marker=InstalledMarker(build, config.source.revision, host.kernconf, "worktree", "x"),
        boot_envs=envs,
        etc=EtcFiles(render.make_conf(config, bs, host), render.src_conf(config, bs)),
        mounts=mounts,
        jobs=Jobs(None, None),
        exports=parse_exports_text(exports) if is_src or is_build else None,
        source=SourceTree(True, config.source.revision) if is_src else None,
        kernel_configs=kernel_configs,
        objtree=ObjTree({build: Build(build, "done", 0)}) if is_build else None,
    )


def fleet_synced(config: Config) -> dict[str, HostFacts]:
    return {h.name: synced(config, h.name) for h in config.hosts}


def fresh(config: Config, name: str) -> HostFacts:
    """A host as a fresh install leaves it: nothing of the reconciler's yet."""
    facts = synced(config, name)
    old = "1a2b3c4d5e6f"
    return dataclasses.replace(
        facts,
        versions=dataclasses.replace(
            facts.versions,  # type: ignore[arg-type]
            ident="GENERIC",
            source=KernelSource(old, 268000, "releng/14.1"),
        ),
        marker=None,
        boot_envs=BootEnvironments(
            True, (BootEnvironment("default", "NR", "/", "1G", "2024-01-01 00:00"),)
        )
        if facts.boot_envs and facts.boot_envs.available
        else facts.boot_envs,
        etc=EtcFiles(None, None),
        mounts=Mounts((Mount("zroot/ROOT/default", "/", "zfs", "rw"),), ()),
        exports=None,
        source=SourceTree(False) if facts.source is not None else None,
        kernel_configs=tuple(KernelConfigs(k.arch, ()) for k in facts.kernel_configs or ()) or None,
        objtree=ObjTree() if facts.objtree is not None else None,
    )


def all_tested(config: Config) -> dict[str, SetProgress]:
    """Progress as after a finished rollout: every set's build passed its test stage."""
    return {
        bs.name: SetProgress(
            generation=config.commit or "worktree",
            build=build_id(config, bs),
            status=RolloutStatus.CONVERGED,
            tested=(build_id(config, bs),),
        )
        for bs in config.buildsets
    }
