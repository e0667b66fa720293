"""Observe hosts: one batched SSH round trip per host, hosts in parallel.

Which probes a host gets depends on its roles in the config: every host is
read for versions, boot, marker, boot environments, make.conf/src.conf,
mounts, jobs and its NFS knobs (every host serves or mounts /usr/src or
/usr/obj); the src host also for ``/usr/src``, kernel configs, exports, git
and the pinned revision's param.h; a build host also for ``/usr/obj``, its
free space and exports; a host of a boot-environment set also for ``bectl
check``, its pool's free space and its loaders (reconciler.facts.preflight,
reconciler.facts.loader). A host that cannot be reached or trusted becomes
``HostFacts(reachable=False, error=...)``; the others are still observed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from reconciler.config.model import Config, Host
from reconciler.errors import HostUnreachable, TransportError, UsageError
from reconciler.facts import (
    boot,
    bootenv,
    boottime,
    etcfiles,
    installjobs,
    jobs,
    kernconf,
    loader,
    marker,
    mounts,
    objtree,
    packages,
    pkgsets,
    ports,
    preflight,
    source,
    versions,
)
from reconciler.facts.connect import fleet_pool
from reconciler.facts.host import HostFacts
from reconciler.facts.probe import (
    Output,
    Probe,
    batch_command,
    new_nonce,
    probe_outputs,
    split_batch,
)
from reconciler.settings import Settings
from reconciler.transport.pool import ConnectionPool
from reconciler.transport.ssh import Connection

log = logging.getLogger(__name__)

FACTS_TIMEOUT = 120.0

# The probes run in this order, in one script. Whether a job runs is asked
# first: a job that ends while the script runs has then changed kern.bootfile,
# the marker, the BEs and written its exit file before any of them is read, so
# "not running" is never paired with a bootfile read before installkernel moved
# it (the planner would install the kernel a second time, and kernel.old with it).
COMMON = (
    *jobs.PROBES,
    *versions.PROBES,
    *boot.PROBES,
    *marker.PROBES,
    *bootenv.PROBES,
    *etcfiles.PROBES,
    *mounts.PROBES,
    *boottime.PROBES,
    *installjobs.PROBES,
    *preflight.KNOB_PROBES,
)


def _custom_kernels(config: Config) -> dict[str, list[str]]:
    """arch -> custom kernel idents the config repo ships and some set uses."""
    by_arch: dict[str, list[str]] = {}
    for bs in config.buildsets:
        for ident in bs.kernconfs:
            if config.kernel(ident) is not None:
                by_arch.setdefault(bs.arch, [])
                if ident not in by_arch[bs.arch]:
                    by_arch[bs.arch].append(ident)
        by_arch.setdefault(bs.arch, [])
    return by_arch


def roles(config: Config, host: Host) -> tuple[bool, bool]:
    """(is the src host, is a build host)."""
    is_src = host.name == config.src_host
    is_build = any(bs.build_host == host.name for bs in config.buildsets)
    return is_src, is_build


def boot_environments(config: Config, host: Host) -> bool:
    """Whether the host's build set installs into boot environments."""
    return config.buildset(host.buildset).rollout.install == "boot-environment"


def _package_roles(config: Config, host: Host) -> tuple[bool, bool, tuple[str, ...] | None]:
    """(host's set lists packages, it builds them, origins to check on the src host or None)."""
    bs = config.buildset(host.buildset)
    installs = bs.packages is not None
    builds = installs and bs.build_host == host.name
    origins = None
    if host.name == config.src_host and config.ports is not None and config.ports.pinned:
        listed = {o for s in config.buildsets if s.packages for o in s.packages.all_origins}
        origins = tuple(sorted({o.partition("@")[0] for o in listed}))
    return installs, builds, origins


def _package_probes(config: Config, host: Host) -> list[Probe]:
    installs, builds, origins = _package_roles(config, host)
    # Without packages, the record alone: what the reconciler installed before is removed.
    found: list[Probe] = list(packages.PROBES if installs else packages.MARKER_PROBES)
    if builds:
        found += pkgsets.PROBES
    if origins is not None and config.ports is not None and config.ports.revision is not None:
        found += ports.probes(config.ports.tree, config.ports.revision, origins)
    return found


def probes_for(config: Config, host: Host) -> tuple[Probe, ...]:
    is_src, is_build = roles(config, host)
    found: list[Probe] = list(COMMON)
    if is_src:
        found += source.PROBES
        found += preflight.src_probes(config.source.revision)
        for arch, custom in _custom_kernels(config).items():
            found += kernconf.probes(arch, custom)
    if is_build:
        found += objtree.PROBES
        found += preflight.BUILD_PROBES
    if is_src or is_build:
        found += mounts.EXPORTS_PROBES
    if boot_environments(config, host):
        found += preflight.BE_PROBES
        found += loader.probes(config.buildset(host.buildset).arch)
    found += _package_probes(config, host)
    return tuple(found)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def observe_host(
    conn: Connection, config: Config, host: Host, *, timeout: float = FACTS_TIMEOUT
) -> HostFacts:
    """Read every fact of ``host`` in one round trip (raises TransportError)."""
    probes = probes_for(config, host)
    nonce = new_nonce()
    result = conn.run(batch_command(probes, nonce), timeout=timeout)
    framed = split_batch(result.stdout, nonce)
    if not framed:
        # Not one probe answered: the shell itself failed; nothing here is a fact.
        why = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.exit_code}"]
        raise TransportError(host.name, f"facts could not be read: {why[0][:200]}")
    outputs = probe_outputs(probes, framed)
    is_src, is_build = roles(config, host)
    with_bes = boot_environments(config, host)
    job_facts = jobs.parse(outputs)
    kernel_configs = None
    if is_src:
        kernel_configs = tuple(
            kernconf.parse(outputs, arch, custom)
            for arch, custom in _custom_kernels(config).items()
        )
    return HostFacts(
        host=host.name,
        reachable=True,
        observed_at=_now(),
        versions=versions.parse(outputs),
        boot=boot.parse(outputs),
        marker=marker.parse(outputs),
        boot_envs=bootenv.parse(outputs),
        etc=etcfiles.parse(outputs),
        mounts=mounts.parse(outputs),
        jobs=job_facts,
        exports=mounts.parse_exports(outputs) if (is_src or is_build) else None,
        source=source.parse(outputs) if is_src else None,
        kernel_configs=kernel_configs,
        objtree=objtree.parse(outputs, job_facts.build_running) if is_build else None,
        boottime=boottime.parse(outputs),
        install_jobs=installjobs.parse(outputs),
        src_checks=preflight.parse_src(outputs, config.source.revision) if is_src else None,
        obj_space=preflight.parse_obj(outputs) if is_build else None,
        boot_pool=preflight.parse_boot_pool(outputs) if with_bes else None,
        rc_knobs=preflight.parse_knobs(outputs),
        loaders=loader.parse(outputs, config.buildset(host.buildset).arch) if with_bes else None,
        **_package_facts(config, host, outputs),
    )


def _package_facts(config: Config, host: Host, outputs: dict[str, Output]) -> dict[str, Any]:
    installs, builds, origins = _package_roles(config, host)
    return {
        "packages": packages.parse(outputs) if installs else packages.parse_marker_only(outputs),
        "package_sets": pkgsets.parse(outputs) if builds else None,
        "ports": ports.parse(outputs) if origins is not None else None,
    }


def _observe_one(pool: ConnectionPool, config: Config, host: Host) -> HostFacts:
    try:
        try:
            return observe_host(pool.get(host.name), config, host)
        except HostUnreachable:
            # Reading is harmless to repeat: one more try over a fresh
            # connection rides out a dropped link (connect itself retries).
            pool.drop(host.name)
            return observe_host(pool.get(host.name), config, host)
    except TransportError as exc:
        log.info("%s: not observed: %s", host.name, exc)
        pool.drop(host.name)
        return HostFacts.unreachable(host.name, str(exc), _now())


def observe_with(
    pool: ConnectionPool,
    config: Config,
    hosts: Iterable[str] | None = None,
    *,
    parallel: int = 16,
) -> dict[str, HostFacts]:
    """Observe through an existing pool (its connections stay open for reuse)."""
    targets = list(config.hosts)
    if hosts is not None:
        known = {h.name: h for h in config.hosts}
        wanted = list(dict.fromkeys(hosts))
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise UsageError(f"no such host(s) in the config: {', '.join(unknown)}")
        targets = [known[name] for name in wanted]
    if not targets:
        return {}
    workers = max(1, min(parallel, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="observe") as executor:
        results = list(executor.map(lambda h: _observe_one(pool, config, h), targets))
    return {facts.host: facts for facts in results}


def observe(
    config: Config, settings: Settings, hosts: Iterable[str] | None = None
) -> dict[str, HostFacts]:
    """Observe hosts (default: all) in parallel, at most ``settings.parallel`` at once."""
    with fleet_pool(config, settings) as pool:
        return observe_with(pool, config, hosts, parallel=settings.parallel)
