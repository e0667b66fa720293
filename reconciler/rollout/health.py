"""Health checks and the soak: healthy must hold for the whole soak, checked more than once.

(Kargo promoted on a momentary "healthy", its issue #41.)

A check is a shell command on the host (``timeout -k 5 T sh -c CHECK``:
timeout(1) exits 124 when the time is up, bin/timeout/timeout.1) or an HTTP
probe fetched **from the host itself** (``fetch -q -o /dev/null -T T URL``:
fetch(1) exits 0 on a 2xx answer, 1 otherwise, and says why on stderr). From
the host, because that is what the host's own clients and its load balancer
see (a service bound to 127.0.0.1, pf rules, the host's resolver), and it needs
no port forwarding or a route from the reconciler to the service. A run that
fails is tried again at once ``retries`` times; during the soak each check
runs at its own ``interval`` (its default: the soak's start, middle and end).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from reconciler.clock import Clock
from reconciler.config.model import HealthCheck
from reconciler.errors import CommandTimeout
from reconciler.rollout.scripts import health_command
from reconciler.transport.ssh import Connection

CHECK_TIMEOUT = 120.0
#: A soak checks at its start, at its end and at least this many times in all.
SOAK_ROUNDS = 3
#: timeout(1)'s exit status when the time ran out.
TIMED_OUT = 124
#: The most rounds a soak runs, however short the intervals (bounded work).
MAX_ROUNDS = 1000
#: Seconds the backstop on our side allows beyond a check's own timeout.
_GRACE = 15.0


def check_argv(check: HealthCheck | str) -> list[str]:
    """The command a check runs on its host (pure)."""
    if isinstance(check, str):
        check = HealthCheck(command=check)
    seconds = str(check.timeout)
    if check.url:
        return ["fetch", "-q", "-o", "/dev/null", "-T", seconds, check.url]
    return ["timeout", "-k", "5", seconds, *health_command(check.command)]


def _run_once(conn: Connection, check: HealthCheck) -> str | None:
    """None when healthy, else what failed in words."""
    try:
        result = conn.run(check_argv(check), timeout=check.timeout + _GRACE)
    except CommandTimeout:
        return f"'{check}' did not finish in {check.timeout}s"
    if result.ok:
        return None
    said = (result.stderr + result.stdout).strip().splitlines()
    if not check.url and result.exit_code == TIMED_OUT:
        return f"'{check}' timed out after {check.timeout}s"
    return f"'{check}' exited {result.exit_code}" + (f": {said[0]}" if said else "")


def run_check(conn: Connection, check: HealthCheck) -> str | None:
    """One check, tried again at once ``retries`` times; None when it passed."""
    failure = None
    for _ in range(1 + max(0, check.retries)):
        failure = _run_once(conn, check)
        if failure is None:
            return None
    return failure


def run_health_checks(conn: Connection, checks: Sequence[HealthCheck | str]) -> list[str]:
    """Every failing check as ``'CHECK' exited N: first output line``; [] when all pass."""
    found = [
        run_check(conn, c if isinstance(c, HealthCheck) else HealthCheck(command=c)) for c in checks
    ]
    return [f for f in found if f is not None]


class Rounds:
    """The soak's checks, each run when its interval has passed (its first run: at once)."""

    def __init__(self, checks: Sequence[HealthCheck], clock: Clock) -> None:
        self.checks = tuple(checks)
        self.clock = clock
        self._last: dict[int, float] = {}

    @property
    def every(self) -> float | None:
        """Seconds between soak rounds: the shortest interval; None: the default schedule."""
        found = [c.interval for c in self.checks if c.interval > 0]
        return float(min(found)) if found else None

    def run(self, conn: Connection) -> list[str]:
        """The checks that are due (all of them the first time); what failed."""
        now = self.clock.now()
        failures = []
        for index, check in enumerate(self.checks):
            last = self._last.get(index)
            # A little slack: a round that starts a moment early still runs it.
            if last is not None and check.interval and now - last < check.interval * 0.9:
                continue
            self._last[index] = now
            failure = run_check(conn, check)
            if failure is not None:
                failures.append(failure)
        return failures


def soak_schedule(
    seconds: float, rounds: int = SOAK_ROUNDS, every: float | None = None
) -> list[float]:
    """Offsets from the soak's start at which to check (pure).

    ``every``: a round each ``every`` seconds (the checks' shortest interval) and one
    at the end; else ``rounds`` rounds spread over the soak.
    """
    if every is not None and every > 0 and seconds > 0:
        count = min(MAX_ROUNDS, math.ceil(seconds / every))
        offsets = [min(seconds, i * every) for i in range(count)]
        return [*offsets, float(seconds)] if offsets[-1] < seconds else offsets
    rounds = max(2, rounds)
    return [seconds * i / (rounds - 1) for i in range(rounds)]


def soak(
    check: Callable[[], list[str]],
    *,
    seconds: float,
    clock: Clock,
    every: float | None = None,
) -> list[str]:
    """Run ``check`` on the schedule; the first round with problems ends the soak."""
    start = clock.now()
    for offset in soak_schedule(seconds, every=every):
        delay = start + offset - clock.now()
        if delay > 0:
            clock.sleep(delay)
        problems = check()
        if problems:
            elapsed = clock.now() - start
            return [f"{p} (after {elapsed:.0f}s of a {seconds:g}s soak)" for p in problems]
    return []
