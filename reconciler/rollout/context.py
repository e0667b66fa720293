"""What every stage of a rollout shares: the config, connections, status, clock, progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.clock import Clock
from reconciler.config.model import BuildSet, Config, Host
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe_host
from reconciler.progress import SetProgress
from reconciler.rollout.engine_types import Event
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

    @property
    def generation(self) -> str:
        return self.config.commit or "worktree"

    def conn(self, host: Host) -> Connection:
        return self.pool.get(host.name)

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

    def record(self, update: Update) -> str:
        return self.writer.record(update)
