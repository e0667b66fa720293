"""Everything observed about one host, as one frozen value.

An unreachable host (refused, timed out, key rejected) is a fact too:
``reachable=False`` with the reason in ``error``. Role-specific parts are
``None`` where they do not apply: ``source``/``kernel_configs``/``src_checks``
on the src host only, ``objtree``/``obj_space`` on build hosts only,
``exports`` on NFS servers, ``boot_pool``/``loaders`` on hosts of
boot-environment sets.
The packages half (issue 11): ``packages`` on every host of a set that lists
packages, ``ports`` on the src host when fleet.yaml pins the ports tree,
``package_sets`` on the build host of a set that lists packages. All default
to None, so facts recorded before they existed still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.facts.boot import BootFile
from reconciler.facts.bootenv import BootEnvironments
from reconciler.facts.codec import from_jsonable, to_jsonable
from reconciler.facts.etcfiles import EtcFiles
from reconciler.facts.installjobs import InstallJobs
from reconciler.facts.jobs import Jobs
from reconciler.facts.kernconf import KernelConfigs
from reconciler.facts.loader import Loaders
from reconciler.facts.marker import InstalledMarker
from reconciler.facts.mounts import Mounts
from reconciler.facts.objtree import ObjTree
from reconciler.facts.packages import InstalledPackages
from reconciler.facts.pkgsets import PackageSets
from reconciler.facts.ports import PortsCheckout
from reconciler.facts.preflight import BootPool, ObjSpace, RcKnobs, SrcChecks
from reconciler.facts.source import SourceTree
from reconciler.facts.versions import Versions

FORMAT = 1


@dataclass(frozen=True)
class HostFacts:
    host: str
    reachable: bool
    error: str | None = None
    observed_at: str | None = None  # UTC ISO-8601
    versions: Versions | None = None
    boot: BootFile | None = None
    marker: InstalledMarker | None = None  # None: never installed by the reconciler
    boot_envs: BootEnvironments | None = None
    etc: EtcFiles | None = None
    mounts: Mounts | None = None
    jobs: Jobs | None = None
    exports: tuple[str, ...] | None = None  # None: no /etc/exports (or not read)
    source: SourceTree | None = None
    kernel_configs: tuple[KernelConfigs, ...] | None = None
    objtree: ObjTree | None = None
    boottime: str | None = None  # kern.boottime
    install_jobs: InstallJobs | None = None  # ended install jobs (None: not read)
    # What preflight checks (reconciler.facts.preflight, .loader); None: not read
    # (another role, or facts recorded before these were read).
    src_checks: SrcChecks | None = None  # src host: git, shallow clone, pinned param.h
    obj_space: ObjSpace | None = None  # build hosts: df /usr/obj, size of the newest build
    boot_pool: BootPool | None = None  # boot-environment hosts: bectl check, the BE's pool
    rc_knobs: RcKnobs | None = None  # every host: the NFS knobs of rc.conf
    loaders: Loaders | None = None  # boot-environment hosts: /boot/loader.efi and the ESP's
    packages: InstalledPackages | None = None
    ports: PortsCheckout | None = None
    package_sets: PackageSets | None = None

    @classmethod
    def unreachable(cls, host: str, error: str, observed_at: str | None = None) -> HostFacts:
        return cls(host=host, reachable=False, error=error, observed_at=observed_at)

    @property
    def obj_own_filesystem(self) -> bool | None:
        """Whether /usr/obj is a mount point of its own (None: unknown)."""
        if self.mounts is None or not self.mounts.mounted_known:
            return None
        mount = self.mounts.at("/usr/obj")
        return mount is not None and mount.fstype != "nfs"

    def kernel_configs_for(self, arch: str) -> KernelConfigs | None:
        for entry in self.kernel_configs or ():
            if entry.arch == arch:
                return entry
        return None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        data["format"] = FORMAT
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostFacts:
        body = {k: v for k, v in data.items() if k != "format"}
        return from_jsonable(cls, body)
