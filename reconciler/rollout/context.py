"""What every stage of a rollout shares: the config, connections, ledger, clock, progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.clock import Clock
from reconciler.config.model import BuildSet, Config, Host
from reconciler.rollout.engine_types import Event
from reconciler.rollout.state import RolloutState
from reconciler.settings import Settings
from reconciler.transport.pool import ConnectionPool
from reconciler.transport.ssh import Connection


@dataclass
class Context:
    config: Config
    settings: Settings
    pool: ConnectionPool
    clock: Clock
    progress: Callable[[Event], None]
    stop: threading.Event = field(default_factory=threading.Event)
    heal_drift: bool = True
    #: Seconds between reboot probes.
    poll: float = 0.5
    #: The src host's /usr/src is checked out once per run, whichever build set gets there first.
    source_lock: threading.Lock = field(default_factory=threading.Lock)
    source_done: bool = False

    @property
    def generation(self) -> str:
        return self.config.commit or "worktree"

    def conn(self, host: Host) -> Connection:
        return self.pool.get(host)

    def say(
        self, kind: str, message: str, buildset: BuildSet | None = None, host: Host | None = None
    ) -> None:
        self.progress(
            Event(kind, message, buildset.name if buildset else None, host.name if host else None)
        )


@dataclass
class SetRun:
    """One build set's rollout in progress."""

    ctx: Context
    buildset: BuildSet
    build_id: str
    state: RolloutState
