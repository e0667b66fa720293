"""Health checks as commands, and the soak's schedule with intervals (pure)."""

from __future__ import annotations

from reconciler.config.model import HealthCheck
from reconciler.rollout.health import MAX_ROUNDS, check_argv, soak, soak_schedule


def test_commands_run_under_timeout_and_probes_under_fetch() -> None:
    assert check_argv("service sshd status") == [
        "timeout", "-k", "5", "120", "sh", "-c", "service sshd status",
    ]  # fmt: skip
    assert check_argv(HealthCheck(command="x; $(y)", timeout=7)) == [
        "timeout", "-k", "5", "7", "sh", "-c", "x; $(y)",
    ]  # fmt: skip
    assert check_argv(HealthCheck(url="http://127.0.0.1:8080/health", timeout=3)) == [
        "fetch", "-q", "-o", "/dev/null", "-T", "3", "http://127.0.0.1:8080/health",
    ]  # fmt: skip


def test_soak_schedule_follows_the_shortest_interval_and_ends_at_the_end() -> None:
    assert soak_schedule(600) == [0.0, 300.0, 600.0]  # no intervals: as before
    assert soak_schedule(10, every=4) == [0, 4, 8, 10.0]
    assert soak_schedule(9, every=3) == [0, 3, 6, 9.0]
    assert len(soak_schedule(604800, every=1)) == MAX_ROUNDS + 1  # bounded


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: object = None) -> bool:
        self.t += seconds
        return False


def test_a_soak_with_an_interval_checks_that_often_and_stops_at_the_first_failure() -> None:
    clock = _Clock()
    seen: list[float] = []

    def check() -> list[str]:
        seen.append(clock.now())
        return ["'GET http://h/' exited 1: fetch: http://h/: Not Found"] if clock.t >= 6 else []

    problems = soak(check, seconds=20, clock=clock, every=2)
    assert seen == [0, 2, 4, 6]
    assert problems == [
        "'GET http://h/' exited 1: fetch: http://h/: Not Found (after 6s of a 20s soak)"
    ]
