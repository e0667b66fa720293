"""rollout.windows and fleet.yaml freeze: read into the model, and every mistake at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config.load import load_config
from reconciler.config.model import Freeze, HealthCheck, Window
from reconciler.errors import ConfigInvalid
from tests.config.conftest import edit

LAB = "buildsets/lab/buildset.yaml"


def problems(repo: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config(repo)
    return [str(p) for p in caught.value.problems]


def _windows(repo: Path, *lines: str) -> None:
    edit(repo / LAB, "  soak: 5\n", "  soak: 5\n  windows:\n" + "".join(f"{x}\n" for x in lines))


def _line(repo: Path, path: str, text: str) -> int:
    return next(
        i for i, line in enumerate((repo / path).read_text().splitlines(), 1) if text in line
    )


def test_windows_and_freezes_are_read(repo: Path) -> None:
    _windows(
        repo,
        '    - {days: [sat, Sunday], start: "02:00", duration: 4h, timezone: Europe/Berlin}',
        '    - {rrule: "FREQ=MONTHLY;BYDAY=1SA", start: "22:00", duration: 1h30m, timezone: UTC}',
    )
    with (repo / "fleet.yaml").open("a") as handle:
        handle.write(
            "freeze:\n"
            '  - {from: "2026-12-20 00:00", until: "2027-01-04", timezone: Europe/Berlin,\n'
            "     reason: year-end change freeze}\n"
        )
    config = load_config(repo)
    assert config.buildset("lab").rollout.windows == (
        Window("02:00", 4 * 3600, "Europe/Berlin", ("SA", "SU")),
        Window("22:00", 5400, "UTC", (), "FREQ=MONTHLY;BYDAY=1SA"),
    )
    assert config.freezes == (
        Freeze("2026-12-20 00:00", "2027-01-04", "Europe/Berlin", "year-end change freeze"),
    )
    assert config.buildset("db").rollout.windows == ()


def test_bad_windows_are_named_at_their_line(repo: Path) -> None:
    _windows(
        repo,
        '    - {days: [sat, caturday], start: "02:00", duration: 4h, timezone: Europe/Berlin}',
        '    - {days: [mon], start: "02:00", duration: 0m, timezone: Mars/Olympus}',
        '    - {days: [mon], start: "25:00", duration: 2h, timezone: UTC}',
        '    - {rrule: "FREQ=WEEKLY;COUNT=3", start: "02:00", duration: 2h, timezone: UTC}',
        '    - {start: "02:00", duration: 2h, timezone: UTC}',
    )
    found = problems(repo)
    caturday = _line(repo, LAB, "caturday")
    zero = _line(repo, LAB, "Mars/Olympus")
    assert any(
        p.startswith(f"{LAB}:{caturday}:")
        and "'caturday' is not a day name" in p
        and "use mon, tue" in p
        for p in found
    ), found
    assert any(f"{LAB}:{zero}:" in p and "'0m' is not more than zero" in p for p in found)
    assert any(
        f"{LAB}:{zero}:" in p and "'Mars/Olympus' is not a time zone" in p and "IANA" in p
        for p in found
    )
    assert any("'25:00' is not HH:MM" in p for p in found)
    assert any("COUNT is not allowed" in p for p in found)
    assert any("a window needs days or rrule" in p for p in found)
    assert len(found) == 6, found


def test_a_freeze_that_ends_before_it_starts(repo: Path) -> None:
    with (repo / "fleet.yaml").open("a") as handle:
        handle.write(
            "freeze:\n"
            '  - from: "2027-01-04 00:00"\n'
            '    until: "2026-12-20 00:00"\n'
            "    timezone: Europe/Berlin\n"
            "    reason: year end\n"
            '  - {from: "2027-13-01", until: "2028-01-01", timezone: Nowhere/City, reason: x}\n'
        )
    found = problems(repo)
    until = _line(repo, "fleet.yaml", 'until: "2026-12-20')
    assert any(
        p.startswith(f"fleet.yaml:{until}:") and "is not after from (2027-01-04 00:00)" in p
        for p in found
    ), found
    assert any("'2027-13-01' is not a date and time" in p for p in found)
    assert any("'Nowhere/City' is not a time zone" in p for p in found)
    assert len(found) == 3, found


def test_health_checks_with_interval_timeout_retries_and_http_probes(repo: Path) -> None:
    edit(
        repo / LAB,
        "    - service sshd status\n",
        "    - service sshd status\n"
        "    - {command: service nginx status, interval: 30, timeout: 5, retries: 2}\n"
        "    - {http: {url: 'http://127.0.0.1:8080/health'}, interval: 10, timeout: 3}\n",
    )
    checks = load_config(repo).buildset("lab").rollout.health_checks
    assert checks == (
        HealthCheck(command="service sshd status"),
        HealthCheck(command="service nginx status", interval=30, timeout=5, retries=2),
        HealthCheck(url="http://127.0.0.1:8080/health", interval=10, timeout=3),
    )
    assert str(checks[2]) == "GET http://127.0.0.1:8080/health"


def test_a_health_check_is_a_command_or_a_probe_not_both(repo: Path) -> None:
    edit(
        repo / LAB,
        "    - service sshd status\n",
        "    - {command: 'true', http: {url: 'http://127.0.0.1/'}}\n"
        "    - {interval: 5}\n"
        "    - {http: {url: 'http://a b/'}}\n"
        "    - {command: 'true', timeout: 0}\n",
    )
    found = problems(repo)
    first = _line(repo, LAB, "command: 'true', http")
    assert any(
        p.startswith(f"{LAB}:{first}:") and "give either command or http" in p for p in found
    ), found
    assert sum("give either command or http" in p for p in found) == 2
    assert any("'http://a b/' is not a valid HTTP URL" in p for p in found), found
    assert any("timeout: must be at least 1" in p for p in found), found
