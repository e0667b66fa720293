"""Rollout engine: one generation of the config repo, every build set, stage by stage.

(API fixed; the body is being written. The daemon and `apply` call ``converge``.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.config.model import Config
from reconciler.settings import Settings


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


def converge(
    config: Config,
    *,
    settings: Settings,
    ledger: object,
    buildsets: Sequence[str] | None = None,
    progress: Callable[[Event], None] = lambda event: None,
    stop: threading.Event | None = None,
    heal_drift: bool = True,
) -> Report:
    """Bring every host of the selected build sets to ``config``; record every outcome in ``ledger``.

    Never raises for a host's failure (that is a result); raises only for errors
    that stop everything (ledger unwritable). ``stop`` is checked between steps:
    a running step finishes, then the function returns with ``interrupted=True``.
    ``heal_drift=False`` (the daemon under ``drift: report``) records drift without
    changing hosts that are otherwise in sync.
    """
    raise NotImplementedError
