"""Maintenance windows and freezes as the config repo spells them: parsing and their rules.

``rollout.windows`` (buildset.yaml) is a list of recurring windows::

    windows:
      - {days: [sat, sun], start: "02:00", duration: 4h, timezone: Europe/Berlin}
      - {rrule: "FREQ=MONTHLY;BYDAY=1SA", start: "22:00", duration: 2h30m, timezone: UTC}

``days`` (mon..sun; RFC 5545's MO..SU and full names too) or ``rrule`` (an
RFC 5545 RRULE, read by python-dateutil; DAILY, WEEKLY, MONTHLY or YEARLY,
without DTSTART or COUNT: the window's own start and time zone anchor it).
``start`` is local wall-clock time in ``timezone`` (an IANA name); ``duration``
is elapsed time (``4h``, ``90m``, ``1h30m``), so a window over a DST change
lasts as long as written.

``freeze`` (fleet.yaml) is a list of periods in which no disruptive step
starts anywhere::

    freeze:
      - {from: "2026-12-20 00:00", until: "2027-01-04 00:00", timezone: Europe/Berlin,
         reason: year-end change freeze}

The rules here run after the schema (reconciler.config.rules) and report
each problem at its YAML line; values the schema rejected are skipped.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dateutil.rrule import rrulestr

from reconciler.config.yamldoc import Document, Where
from reconciler.errors import Problem

#: Day names as written -> RFC 5545's two-letter weekday.
DAYS = {
    **{d: d.upper() for d in ("mo", "tu", "we", "th", "fr", "sa", "su")},
    **{
        name: name[:2].upper()
        for name in (
            *("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
            *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        )
    },
}
DAY_HINT = "use mon, tue, wed, thu, fri, sat or sun"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?\Z")
_START = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\Z")
_MOMENT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]([01]\d|2[0-3]):([0-5]\d))?\Z")
#: Longest window: a week (longer ones overlap their own next occurrence).
MAX_DURATION = 7 * 24 * 3600
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")


def day(name: str) -> str | None:
    """RFC 5545's weekday (MO..SU) for a day name as written, or None."""
    return DAYS.get(name.strip().lower())


def duration_seconds(text: str) -> int | None:
    """``4h``, ``90m``, ``1h30m`` in seconds; None when it is not written so."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        return None
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60


def local_moment(text: str) -> datetime | None:
    """``YYYY-MM-DD HH:MM`` (or a date alone: midnight) as a naive local datetime."""
    match = _MOMENT.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, dom, hour, minute = match.groups()
    try:
        return datetime(int(year), int(month), int(dom), int(hour or 0), int(minute or 0))
    except ValueError:
        return None


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA time zone ``name``, or None when the tz database does not know it."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def rrule_problem(text: str) -> str | None:
    """Why ``text`` is not an RRULE a window can use; None when it is."""
    parts = {p.split("=", 1)[0].strip().upper() for p in text.split(";") if p.strip()}
    if "DTSTART" in parts or text.upper().startswith("DTSTART"):
        return "DTSTART is not allowed (start and timezone anchor the window)"
    if "INTERVAL" in parts:
        # Every other week counts from an anchor; the window has none that users see.
        return "INTERVAL is not allowed (say which days with BYDAY, BYMONTHDAY or BYSETPOS)"
    if "COUNT" in parts:
        return "COUNT is not allowed (a window recurs; use UNTIL to end it)"
    freq = re.search(r"FREQ=([A-Z]+)", text.upper())
    if freq is None or freq.group(1) not in _FREQS:
        return "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"
    try:
        rrulestr(text, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError) as exc:
        return f"not an RFC 5545 RRULE: {exc}"
    return None


def _window_problems(doc: Document, where: Where, spec: dict[str, Any]) -> Iterator[Problem]:
    at = ".".join(str(p) for p in where)
    days, rule = spec.get("days"), spec.get("rrule")
    if days is None and rule is None:
        yield doc.problem(where, f"{at}: a window needs days or rrule", "add days: [sat, sun], say")
    if days is not None and rule is not None:
        yield doc.problem((*where, "rrule"), f"{at}: days and rrule together", "give one of them")
    if isinstance(days, list):
        for index, name in enumerate(days):
            if isinstance(name, str) and day(name) is None:
                yield doc.problem(
                    (*where, "days", index), f"{at}.days: {name!r} is not a day name", DAY_HINT
                )
    if isinstance(rule, str):
        why = rrule_problem(rule)
        if why is not None:
            yield doc.problem(
                (*where, "rrule"),
                f"{at}.rrule: {why}",
                'write e.g. "FREQ=WEEKLY;BYDAY=SA" or "FREQ=MONTHLY;BYDAY=1SU"',
            )
    start = spec.get("start")
    if isinstance(start, str) and not _START.match(start):
        yield doc.problem(
            (*where, "start"), f"{at}.start: {start!r} is not HH:MM", 'write e.g. "02:00"'
        )
    elif isinstance(start, int):
        # YAML 1.1 readers turn an unquoted 02:00 into 120 (base 60); ours keeps text.
        yield doc.problem(
            (*where, "start"), f"{at}.start: {start!r} is not HH:MM", 'quote it: "02:00"'
        )
    length = spec.get("duration")
    if isinstance(length, str):
        seconds = duration_seconds(length)
        if seconds is None:
            yield doc.problem(
                (*where, "duration"),
                f"{at}.duration: {length!r} is not a duration",
                "write hours and minutes, e.g. 4h, 90m or 1h30m",
            )
        elif seconds <= 0:
            yield doc.problem(
                (*where, "duration"),
                f"{at}.duration: {length!r} is not more than zero",
                "a window must last at least a minute",
            )
        elif seconds > MAX_DURATION:
            yield doc.problem(
                (*where, "duration"),
                f"{at}.duration: {length!r} is longer than a week",
                "a window lasts at most 168h; with no windows at all, installs run any time",
            )
    yield from _zone_problem(doc, (*where, "timezone"), spec.get("timezone"))


def _zone_problem(doc: Document, where: Where, name: Any) -> Iterator[Problem]:
    if isinstance(name, str) and zone(name) is None:
        yield doc.problem(
            where,
            f"{'.'.join(str(p) for p in where)}: {name!r} is not a time zone the tz database knows",
            "use an IANA name such as Europe/Berlin, America/New_York or UTC",
        )


def window_rules(doc: Document) -> Iterator[Problem]:
    """buildset.yaml's ``rollout.windows``."""
    data = doc.data if isinstance(doc.data, dict) else {}
    rollout = data.get("rollout")
    windows = rollout.get("windows") if isinstance(rollout, dict) else None
    if not isinstance(windows, list):
        return
    for index, spec in enumerate(windows):
        if isinstance(spec, dict):
            yield from _window_problems(doc, ("rollout", "windows", index), spec)


def health_rules(doc: Document) -> Iterator[Problem]:
    """A mapping in ``rollout.health_checks`` is a command or an HTTP probe, exactly one."""
    data = doc.data if isinstance(doc.data, dict) else {}
    rollout = data.get("rollout")
    checks = rollout.get("health_checks") if isinstance(rollout, dict) else None
    if not isinstance(checks, list):
        return
    for index, spec in enumerate(checks):
        if isinstance(spec, dict) and ("command" in spec) == ("http" in spec):
            yield doc.problem(
                ("rollout", "health_checks", index),
                f"rollout.health_checks.{index}: give either command or http",
                "command: a shell command that must exit 0; http: {url: ...} fetched on the host",
            )


def freeze_rules(doc: Document) -> Iterator[Problem]:
    """fleet.yaml's ``freeze``: readable moments, a known zone, until after from."""
    data = doc.data if isinstance(doc.data, dict) else {}
    freezes = data.get("freeze")
    if not isinstance(freezes, list):
        return
    for index, spec in enumerate(freezes):
        if not isinstance(spec, dict):
            continue
        where: Where = ("freeze", index)
        moments = {}
        for key in ("from", "until"):
            text = spec.get(key)
            if isinstance(text, str):
                moments[key] = local_moment(text)
                if moments[key] is None:
                    yield doc.problem(
                        (*where, key),
                        f"freeze.{index}.{key}: {text!r} is not a date and time",
                        'write "YYYY-MM-DD HH:MM" (local time in the freeze\'s timezone)',
                    )
        start, end = moments.get("from"), moments.get("until")
        if start is not None and end is not None and end <= start:
            yield doc.problem(
                (*where, "until"),
                f"freeze.{index}.until ({spec['until']}) is not after from ({spec['from']})",
                "swap them, or correct the date",
            )
        yield from _zone_problem(doc, (*where, "timezone"), spec.get("timezone"))
