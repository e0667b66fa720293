"""The read model's loader: the local ledger (no fetch, no SSH) + live state -> a StatusView.

:class:`ReadModel` reads the status branch of a local repository (the
daemon's clone, or a config repo for ``reconciler status``) through the
ledger's public API, and caches what it read by the branch tip and the
accepted generation: a page load or a scrape costs one ``git rev-parse``
while nothing changed, and never opens a connection to a host or a remote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.config.model import Config
from reconciler.errors import ReconcilerError
from reconciler.ledger import DEFAULT_BRANCH, Entry, Ledger
from reconciler.readmodel.build import DaemonState, LedgerSnapshot, build_view
from reconciler.readmodel.live import LiveState
from reconciler.readmodel.views import StatusView
from reconciler.statusstore import StatusStore

#: Ledger commits read for the timeline and the last build of each set.
WINDOW = 500


def _read(read: Callable[..., Any], problems: list[str], *args: str) -> Any:
    try:
        return read(*args)
    except ReconcilerError as exc:  # one unreadable file: shown as unknown, said once
        problems.append(str(exc))
        return None


def read_snapshot(ledger: Ledger, config: Config | None, window: int = WINDOW) -> LedgerSnapshot:
    """Everything the view needs from the ledger, through its public API."""
    tip = ledger.head()
    if tip is None:
        return LedgerSnapshot(ledger.branch)
    entries = tuple(ledger.entries(limit=window))
    members: dict[str, list[str]] = {}
    if config is not None:
        for bs in config.buildsets:
            members[bs.name] = [h.name for h in bs.hosts]
    else:
        for entry in reversed(entries):
            if entry.buildset:
                hosts = members.setdefault(entry.buildset, [])
                if entry.host and entry.host not in hosts:
                    hosts.append(entry.host)
    problems: list[str] = []
    store = StatusStore(ledger)
    rollouts = {name: _read(store.rollout_document, problems, name) for name in members}
    host_files: dict[str, Any] = {}
    host_last: dict[str, Entry] = {}
    for name, hosts in members.items():
        for host in hosts:
            host_files[host] = _read(store.host_status, problems, name, host)
            newest = next((e for e in entries if e.host == host), None)
            if newest is None:
                older = ledger.entries(host=host, limit=1)
                newest = older[0] if older else None
            if newest is not None:
                host_last[host] = newest
    # A host named "quarantine" would own that path (as one named "rollout" would rollout.json).
    found = _read(
        lambda: store.quarantine_documents(
            name for name, hosts in members.items() if "quarantine" not in hosts
        ),
        problems,
    )
    quarantine = tuple(doc for _, doc in found or ())
    return LedgerSnapshot(
        branch=ledger.branch,
        tip=tip,
        rollouts=rollouts,
        host_files=host_files,
        entries=entries,
        host_last=host_last,
        quarantine=quarantine,
        members={name: tuple(hosts) for name, hosts in members.items()},
        error="; ".join(problems) or None,
    )


class ReadModel:
    """One read model per daemon (or per ``reconciler status`` call); safe across threads."""

    def __init__(
        self,
        repo: Path,
        *,
        settings: Any = None,
        live: LiveState | None = None,
        state: Callable[[], DaemonState | None] = lambda: None,
        config: Callable[[], Config | None] | None = None,
        window: int = WINDOW,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = Path(repo)
        self.settings = settings
        self.live = live
        self._state = state
        self._config = config
        self._window = window
        self._now = now
        self._lock = threading.Lock()
        self._ledgers: dict[str, Ledger] = {}
        self._key: tuple[str, str | None, str | None] | None = None
        self._snapshot: LedgerSnapshot | None = None

    def ledger(self, config: Config | None = None) -> Ledger:
        """The (local, read-only use) ledger of the status branch the config names."""
        branch = config.policy.status_branch if config else DEFAULT_BRANCH
        with self._lock:
            if branch not in self._ledgers:
                self._ledgers[branch] = Ledger(self.repo, branch)
            return self._ledgers[branch]

    def snapshot(self, config: Config | None) -> LedgerSnapshot:
        ledger = self.ledger(config)
        try:
            tip = ledger.head()
        except ReconcilerError as exc:
            return LedgerSnapshot(ledger.branch, error=str(exc))
        key = (ledger.branch, tip, config.commit if config else None)
        with self._lock:
            if key == self._key and self._snapshot is not None:
                return self._snapshot
        try:
            snapshot = read_snapshot(ledger, config, self._window)
        except ReconcilerError as exc:
            return LedgerSnapshot(ledger.branch, tip=tip, error=str(exc))
        with self._lock:
            self._key, self._snapshot = (ledger.branch, snapshot.tip, key[2]), snapshot
        return snapshot

    def current(self) -> StatusView:
        """The status view now: the cached ledger part, the live part as it is."""
        live = self.live.snapshot() if self.live else None
        config = self._config() if self._config is not None else (live.config if live else None)
        return build_view(
            self.snapshot(config),
            config=config,
            live=live,
            state=self._state(),
            settings=self.settings,
            now=self._now(),
        )
