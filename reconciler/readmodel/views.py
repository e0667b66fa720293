"""What the status page, ``/api/status``, the metrics and ``reconciler status`` show: frozen values.

A :class:`StatusView` is built by :func:`reconciler.readmodel.build.build_view`
from the ledger tip, the accepted config and the daemon's own state; nothing
in here reads a host. ``to_json`` gives the ``/api/status`` document
(``schema/status.schema.json``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class CommitRef:
    """A ledger commit: its id and, with the ``commit_url`` setting, a link to it."""

    commit: str
    url: str | None = None

    @property
    def short(self) -> str:
        return self.commit[:12]


@dataclass(frozen=True)
class LedgerItem:
    """One ledger commit in the timeline."""

    ref: CommitRef
    time: datetime
    subject: str
    outcome: str | None
    stage: str | None
    buildset: str | None
    host: str | None
    generation: str | None
    build: str | None


@dataclass(frozen=True)
class HostStatus:
    name: str
    buildset: str
    stage: str  # the host's rollout stage: test | production
    desired_build: str | None
    running_build: str | None  # the build marker the host's last recorded facts carry
    desired_revision: str | None  # 12 hex of fleet.yaml's source revision
    running_revision: str | None  # 12 hex from the kernel's uname -v
    in_sync: bool
    reachable: bool | None  # None: not known yet
    phase: str | None  # the install phase the ledger recorded
    last_outcome: str | None
    last_message: str | None
    last_at: datetime | None
    last_commit: CommitRef | None
    observed_at: datetime | None  # when the facts behind running_* were read


@dataclass(frozen=True)
class BuildInfo:
    """The newest build of a build set that the ledger's recent window shows."""

    build: str
    result: str  # started (running) | success | failure
    host: str | None
    started: datetime | None
    finished: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(0.0, (self.finished - self.started).total_seconds())


@dataclass(frozen=True)
class Progress:
    """The rollout in progress, from the daemon's typed events (never from the ledger)."""

    running: bool  # an apply job of the daemon is working on this build set now
    host: str | None  # the host of the last step or host event
    step: str | None  # the step kind, when the event carries one
    message: str | None  # the last step or host event, as the engine said it
    build_line: str | None  # the last build progress line (a BUILD event)
    build_at: datetime | None
    updated: datetime | None


@dataclass(frozen=True)
class BuildSetStatus:
    name: str
    generation: str | None  # the generation its rollout.json names
    build: str | None  # the build its rollout.json names
    desired_build: str | None  # the build the accepted config asks for
    stage: str | None  # the stage reached (source, build, production, done)
    outcome: str | None  # running | converged | failed
    updated: datetime | None
    tested: tuple[str, ...]
    last_build: BuildInfo | None
    progress: Progress | None
    hosts: tuple[HostStatus, ...]


@dataclass(frozen=True)
class Quarantined:
    build: str
    buildset: str | None
    reason: str | None
    since: str | None


@dataclass(frozen=True)
class DaemonStatus:
    repo: str
    branch: str
    status_branch: str
    generation: str | None  # accepted last
    status: str | None  # applying | converged | incomplete | failed
    reason: str
    rejected: str | None
    changed_at: str | None
    job: str | None  # apply | drift, while one runs
    job_generation: str | None
    job_since: datetime | None
    last_poll: datetime | None
    started: datetime | None


@dataclass(frozen=True)
class StatusView:
    generated_at: datetime
    ledger_tip: str | None
    daemon: DaemonStatus | None
    buildsets: tuple[BuildSetStatus, ...]
    timeline: tuple[LedgerItem, ...]
    quarantine: tuple[Quarantined, ...]
    error: str | None = None  # why the ledger could not be read (the rest still shows)

    def hosts(self) -> list[HostStatus]:
        return [h for bs in self.buildsets for h in bs.hosts]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, CommitRef):
        return {"commit": value.commit, "short": value.short, "url": value.url}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, BuildInfo):
            data["duration_seconds"] = value.duration_seconds
        return data
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def to_json(view: StatusView) -> dict[str, Any]:
    """The ``/api/status`` document."""
    data: dict[str, Any] = _jsonable(view)
    data["format"] = 1
    return data
