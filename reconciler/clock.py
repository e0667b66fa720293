"""An injectable clock, so waits are bounded and tests need not sleep for real."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep; return True early if ``stop`` was set."""
        ...


def wall_now() -> datetime:
    """The wall-clock time (aware, UTC): what maintenance windows are judged by.

    Kept apart from :class:`Clock` (monotonic, for waits): the rollout gets it
    as a callable, so tests say what time it is without sleeping.
    """
    return datetime.now(UTC)


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(0.0, seconds))
            return False
        return stop.wait(max(0.0, seconds))
