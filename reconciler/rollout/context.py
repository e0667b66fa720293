"""What every stage of a rollout shares: the config, connections, status, clock, progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.clock import Clock, wall_now
from reconciler.config.model import BuildSet, Config, Host
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe_host
from reconciler.progress import SetProgress
from reconciler.rollout.engine_types import Event
from reconciler.rollout.nfsgate import NfsGate
from reconciler.settings import Settings
from reconciler.statusstore import SetWriter, Update
from reconciler.transport.pool import ConnectionPool
from reconciler.transport.ssh import Connection
from reconciler.vocabulary import EventKind, StepKind


@dataclass
class Context:
    config: Config
    settings: Settings
    pool: ConnectionPool
    clock: Clock
    progress: Callable[[Event], None]
    stop: threading.Event = field(default_factory=threading.Event)
    #: Seconds between reboot probes.
    poll: float = 0.5
    #: ``apply --host``: only these hosts' steps (and what they need); None: every host.
    hosts: frozenset[str] | None = None
    #: Reboot group -> its free slots (config.max_down), shared by every build set's thread.
    group_slots: dict[str, threading.Semaphore] = field(default_factory=dict)
    #: NFS servers are not rebooted under clients installing from them (any build set).
    nfs: NfsGate = field(default_factory=NfsGate)
    _slots_lock: threading.Lock = field(default_factory=threading.Lock)

    def selected(self, host: Host) -> bool:
        return self.hosts is None or host.name in self.hosts

    #: Whether a build set may start its next step (a replica that lost the set's lease: no).
    may_continue: Callable[[str], bool] = field(default=lambda buildset: True)
    #: The wall clock maintenance windows and freezes are judged by (tests set it).
    wall: Callable[[], datetime] = field(default=wall_now)

    @property
    def generation(self) -> str:
        return self.config.commit or "worktree"

    def slots(self, group: str) -> threading.Semaphore:
        with self._slots_lock:
            if group not in self.group_slots:
                self.group_slots[group] = threading.Semaphore(self.config.max_down(group))
            return self.group_slots[group]

    def nfs_servers_of(self, host: Host) -> list[str]:
        """The hosts ``host`` mounts /usr/src, the ports tree or /usr/obj from."""
        bs = self.config.buildset(host.buildset)
        return [s for s in dict.fromkeys([self.config.src_host, bs.build_host]) if s != host.name]

    def serves_nfs(self, host: Host) -> bool:
        return host.name == self.config.src_host or any(
            bs.build_host == host.name and len(bs.hosts) > 1 for bs in self.config.buildsets
        )

    def conn(self, host: Host) -> Connection:
        return self.pool.get(host.name)

    def fresh_conn(self, host: Host) -> Connection:
        """A new SSH connection to ``host``, not the pooled one (the caller closes it)."""
        return self.pool.fresh(host.name)

    def observe(self, host: Host) -> HostFacts:
        """The host's facts, read now (raises TransportError)."""
        return observe_host(self.conn(host), self.config, host)

    def say(
        self,
        kind: EventKind,
        message: str,
        buildset: BuildSet | None = None,
        host: Host | None = None,
        step: StepKind | None = None,
    ) -> None:
        self.progress(
            Event(
                kind,
                message,
                buildset.name if buildset else None,
                host.name if host else None,
                str(step) if step else None,
            )
        )


@dataclass
class SetRun:
    """One build set's rollout in progress."""

    ctx: Context
    buildset: BuildSet
    build_id: str
    writer: SetWriter

    @property
    def progress(self) -> SetProgress:
        return self.writer.progress

    @property
    def unit(self) -> str:
        """What progress is keyed by: the package set id when the set has one, else the build."""
        return self.writer.build or self.build_id

    @property
    def stopping(self) -> bool:
        """No new step for this set: asked to stop (SIGTERM, newer commit), or its lease is gone."""
        return self.ctx.stop.is_set() or not self.ctx.may_continue(self.buildset.name)

    def record(self, update: Update) -> str:
        return self.writer.record(update)
