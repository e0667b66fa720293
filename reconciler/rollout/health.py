"""Health checks and the soak: healthy must hold for the whole soak, checked more than once.

(Kargo promoted on a momentary "healthy", its issue #41.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reconciler.clock import Clock
from reconciler.rollout.scripts import health_command
from reconciler.transport.ssh import Connection

CHECK_TIMEOUT = 120.0
#: A soak checks at its start, at its end and at least this many times in all.
SOAK_ROUNDS = 3


def run_health_checks(conn: Connection, checks: Sequence[str]) -> list[str]:
    """Every failing check as ``'CHECK' exited N: first output line``; [] when all pass."""
    failures = []
    for check in checks:
        result = conn.run(health_command(check), timeout=CHECK_TIMEOUT)
        if not result.ok:
            said = (result.stdout + result.stderr).strip().splitlines()
            failures.append(
                f"'{check}' exited {result.exit_code}" + (f": {said[0]}" if said else "")
            )
    return failures


def soak_schedule(seconds: float, rounds: int = SOAK_ROUNDS) -> list[float]:
    """Offsets from the soak's start at which to check (pure)."""
    rounds = max(2, rounds)
    return [seconds * i / (rounds - 1) for i in range(rounds)]


def soak(check: Callable[[], list[str]], *, seconds: float, clock: Clock) -> list[str]:
    """Run ``check`` on the schedule; the first round with problems ends the soak."""
    start = clock.now()
    for offset in soak_schedule(seconds):
        delay = start + offset - clock.now()
        if delay > 0:
            clock.sleep(delay)
        problems = check()
        if problems:
            elapsed = clock.now() - start
            return [f"{p} (after {elapsed:.0f}s of a {seconds:g}s soak)" for p in problems]
    return []
