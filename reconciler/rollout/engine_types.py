"""Results and progress events of a rollout (shared by the engine, apply and the daemon)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Progress for humans and logs: ``kind`` is stage|step|build|host|warning|info."""

    kind: str
    message: str
    buildset: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class HostResult:
    host: str
    buildset: str
    stage: str
    outcome: str  # success|failure|rolled-back|skipped|unreachable|drift
    message: str


@dataclass(frozen=True)
class Report:
    converged: bool  # every host of the selected build sets is on the desired state
    interrupted: bool  # stopped at a safe point because ``stop`` was set
    results: tuple[HostResult, ...]
    summary: tuple[str, ...]  # human lines, one per build set
