"""The desired state, as a frozen, typed model.

Produced only by :func:`reconciler.config.load.load_config` after the schema
and every rule passed, so code that receives a :class:`Config` may trust it:
names are unique, references resolve, every value that reaches a remote
command matched its schema pattern.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

Stage = Literal["test", "production"]
InstallMethod = Literal["boot-environment", "in-place"]
DriftPolicy = Literal["heal", "report"]
PackageMethod = Literal["poudriere", "make"]

#: Kernel configurations that ship with FreeBSD in sys/<arch>/conf and so need
#: no file under kernels/.
STOCK_KERNCONFS = frozenset(
    {"GENERIC", "GENERIC-NODEBUG", "GENERIC-MMCCAM", "MINIMAL", "MINIMAL-NODEBUG", "LINT"}
)


@dataclass(frozen=True)
class Source:
    url: str
    branch: str
    revision: str  # full 40-hex commit

    @property
    def short(self) -> str:
        """The 12-hex prefix that `uname -v` carries."""
        return self.revision[:12]


@dataclass(frozen=True)
class PortsTree:
    tree: str  # absolute path, NFS-shared from the src host
    revision: str | None = None  # with url and branch: the commit the src host keeps
    url: str | None = None
    branch: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether the reconciler keeps the tree at a commit (url, branch and revision given)."""
        return self.revision is not None and self.url is not None and self.branch is not None


@dataclass(frozen=True)
class PortsSettings:
    distdir: str | None = None
    wrkdirprefix: str | None = None
    packages: str | None = None


@dataclass(frozen=True)
class PortOptions:
    """One ``buildsets/<set>/ports/options/<name>/options`` file (poudriere's options dir)."""

    name: str  # OPTIONS_NAME: the origin with its first '/' made '_', e.g. www_nginx
    text: str


@dataclass(frozen=True)
class RepoSigning:
    key: str  # private key on the build host
    pubkey: str  # public key on every host of the set


@dataclass(frozen=True)
class Packages:
    """The ports a build set runs, and how they are built (buildset.yaml ``packages:``)."""

    origins: tuple[str, ...]  # category/port[@flavor], in the order written
    host_extras: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (host, its extra origins)
    method: PackageMethod = "poudriere"
    make_conf: str = ""  # buildsets/<set>/ports/make.conf, verbatim ("" when absent)
    options: tuple[PortOptions, ...] = ()  # sorted by name
    signing: RepoSigning | None = None
    freebsd_repository: bool = True
    keep: int = 3

    def extras(self, host: str) -> tuple[str, ...]:
        return next((origins for name, origins in self.host_extras if name == host), ())

    def for_host(self, host: str) -> tuple[str, ...]:
        """What ``host`` installs: the set's origins, then its own extras."""
        return self.origins + self.extras(host)

    @property
    def all_origins(self) -> tuple[str, ...]:
        """Everything the set's repository holds, sorted: the set's and every host's extras."""
        every = set(self.origins)
        for _, extra in self.host_extras:
            every.update(extra)
        return tuple(sorted(every))


@dataclass(frozen=True)
class HealthCheck:
    """One health check: a shell command on the host, or an HTTP probe fetched from the host."""

    command: str = ""  # sh -c COMMAND must exit 0
    url: str = ""  # or: fetch(1) on the host must get a 2xx answer from this URL
    #: seconds between runs during the soak; 0: the soak's own schedule (start, middle, end)
    interval: int = 0
    timeout: int = 120
    #: failed runs tried again at once before the check counts as failed
    retries: int = 0

    def __str__(self) -> str:
        return self.command or f"GET {self.url}"


@dataclass(frozen=True)
class Window:
    """A recurring maintenance window (reconciler.config.timespec spells its YAML)."""

    start: str  # "HH:MM", local wall-clock time in ``timezone``
    duration: int  # seconds of elapsed time
    timezone: str  # IANA name
    days: tuple[str, ...] = ()  # RFC 5545 weekdays (MO..SU); empty when ``rrule`` is given
    rrule: str | None = None  # an RFC 5545 RRULE instead of ``days``


@dataclass(frozen=True)
class Freeze:
    """A fleet-wide period in which no disruptive step starts."""

    start: str  # "YYYY-MM-DD HH:MM" local (fleet.yaml's ``from``)
    until: str
    timezone: str
    reason: str


@dataclass(frozen=True)
class RolloutPolicy:
    install: InstallMethod = "boot-environment"
    #: wave sizes of the production stage, the last repeated: numbers or "N%"
    batch: tuple[int | str, ...] = (1,)
    #: failures tolerated over the whole production stage: a number or "N%"
    max_failures: int | str = 0
    soak: int = 600
    reboot_timeout: int = 900
    health_checks: tuple[HealthCheck, ...] = ()
    drift: DriftPolicy = "heal"
    keep_builds: int = 3
    #: install a revision whose __FreeBSD_version is older than a host's userland
    allow_downgrade: bool = False
    #: when installs that reboot and reboots may start; empty: any time
    windows: tuple[Window, ...] = ()
    #: boot-environment hosts: seconds the new BE's watchdog waits for the reconciler's
    #: confirmation before it re-activates the previous BE and reboots (confirm or revert)
    confirm_timeout: int = 300
    #: commands run inside the new BE (jail -c path=MNT) before its reboot; each must exit 0
    smoke_checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Host:
    name: str
    buildset: str
    address: str
    kernconf: str
    stage: Stage = "production"
    port: int = 22
    user: str = "root"
    group: str | None = None  # reboot group (fleet.yaml reboot_groups)


@dataclass(frozen=True)
class BuildSet:
    name: str
    arch: str
    build_host: str
    jobs: int
    hosts: tuple[Host, ...]
    make_conf: str  # buildsets/<name>/make.conf, verbatim
    src_conf: str  # buildsets/<name>/src.conf, verbatim
    rollout: RolloutPolicy
    ports: PortsSettings | None = None
    packages: Packages | None = None

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    @cached_property
    def build(self) -> Host:
        return self.host(self.build_host)

    # Cached: the planner asks for these once per host; computed each time, a
    # set of N hosts cost O(N) per host, O(N^2) per plan.
    @cached_property
    def test_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.stage == "test")

    @cached_property
    def production_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.stage == "production")

    @cached_property
    def kernconfs(self) -> tuple[str, ...]:
        """Every distinct kernconf of the set, the build host's first (HB 24.7)."""
        ordered = [self.build.kernconf] + [h.kernconf for h in self.hosts]
        return tuple(dict.fromkeys(ordered))


@dataclass(frozen=True)
class KernelConfig:
    ident: str
    text: str


@dataclass(frozen=True)
class ReconcilerPolicy:
    status_branch: str = "reconciler/status"


@dataclass(frozen=True)
class Config:
    source: Source
    src_host: str
    buildsets: tuple[BuildSet, ...]
    kernels: tuple[KernelConfig, ...]
    known_hosts: str  # OpenSSH known_hosts text
    ports: PortsTree | None = None
    policy: ReconcilerPolicy = field(default_factory=ReconcilerPolicy)
    #: reboot group -> how many of its hosts may be down at once (unlisted groups: 1)
    reboot_groups: Mapping[str, int] = field(default_factory=dict)
    #: fleet.yaml ``freeze``: no disruptive step starts in these periods
    freezes: tuple[Freeze, ...] = ()
    commit: str | None = None  # config repo commit this was loaded from (None: a plain directory)
    origin: str = ""  # how the repo was named when loaded (path or URL), for managed headers

    @cached_property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(h for bs in self.buildsets for h in bs.hosts)

    def max_down(self, group: str) -> int:
        """How many hosts of a reboot group may be installing or rebooting at once."""
        return self.reboot_groups.get(group, 1)

    @cached_property
    def _hosts_by_name(self) -> dict[str, Host]:
        # A fleet of N hosts looks hosts up by name O(N) times a rollout: not O(N) each.
        return {h.name: h for h in self.hosts}

    def host(self, name: str) -> Host:
        try:
            return self._hosts_by_name[name]
        except KeyError:
            raise KeyError(name) from None

    def buildset(self, name: str) -> BuildSet:
        for bs in self.buildsets:
            if bs.name == name:
                return bs
        raise KeyError(name)

    @property
    def src(self) -> Host:
        return self.host(self.src_host)

    def kernel(self, ident: str) -> KernelConfig | None:
        for kernel in self.kernels:
            if kernel.ident == ident:
                return kernel
        return None
