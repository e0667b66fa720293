"""Maintenance windows and freezes: is the gate open at a moment, and when does it open (pure).

A window's occurrences are local wall-clock starts (python-dateutil's rrule
over naive local times), each made aware in the window's IANA zone and
lasting ``duration`` seconds of elapsed time. Across DST changes: a start
that falls into the spring-forward gap (02:30 in Europe/Berlin on the last
Sunday of March) is read with the offset before the change (zoneinfo's
``fold=0``), so the window opens at 03:30 summer time; a start that occurs
twice in autumn opens at its first occurrence. A freeze closes the gate from
``from`` (inclusive) to ``until`` (exclusive), whatever the windows say.

No clock is read here: ``now`` (aware) comes from the caller, the rollout's
injected wall clock, so tests decide what time it is.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, rrule, rrulestr, weekday

from reconciler.config import timespec
from reconciler.config.model import Freeze, Window
from reconciler.vocabulary import Phase, StepKind

#: The steps a closed window or a freeze holds back when they would start a host's
#: disruption: installs that lead to a reboot, and reboots. Source, build, config
#: files, mounts, confirmations, rollbacks and recorded fallbacks never wait.
GATED = frozenset(
    {StepKind.INSTALL, StepKind.INSTALL_KERNEL, StepKind.INSTALL_WORLD, StepKind.REBOOT}
)
#: Phases of a chain under way: it finishes whatever the windows say.
UNDER_WAY = frozenset(
    {
        Phase.INSTALLING,
        Phase.ACTIVATED,
        Phase.REBOOTING,
        Phase.KERNEL_INSTALLED,
        Phase.REBOOTING_KERNEL,
        Phase.WORLD_INSTALLED,
        Phase.REBOOTING_WORLD,
    }
)

#: How far ahead the next opening is looked for.
HORIZON = timedelta(days=400)
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


@dataclass(frozen=True)
class Gate:
    """The gate at one moment: open, or closed with when it opens (None: not within HORIZON)."""

    open: bool
    #: closed: in words, "waiting for the window that opens Sat 02:00 Europe/Berlin (in 3 h 12 min)"
    why: str = ""
    opens: datetime | None = None
    #: open under windows: when the current window closes (None: no windows, open any time)
    closes: datetime | None = None
    #: the time zone of that window, for words
    zone: str = "UTC"


OPEN = Gate(True)


def _zone(name: str) -> ZoneInfo:
    found = timespec.zone(name)
    if found is None:  # validation refused it; a tz database removed under us is a crash
        raise ValueError(f"unknown time zone {name!r}")
    return found


def _rule(window: Window, after: datetime) -> Iterator[datetime]:
    """Naive local starts of ``window`` from the local day before ``after`` on."""
    hour, minute = (int(p) for p in window.start.split(":"))
    anchor = (after - timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    if window.rrule is not None:
        found = rrulestr(window.rrule, dtstart=anchor)
        assert isinstance(found, rrule)
        yield from found.replace(byhour=hour, byminute=minute, bysecond=0)
        return
    days = [weekday(_WEEKDAYS[d]) for d in window.days]
    yield from rrule(DAILY, dtstart=anchor, byweekday=days, byhour=hour, byminute=minute)


def occurrences(
    window: Window, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """(open, close) in UTC of every occurrence of ``window`` that overlaps [start, end)."""
    zone = _zone(window.timezone)
    local_from = (start - timedelta(seconds=window.duration)).astimezone(zone).replace(tzinfo=None)
    length = timedelta(seconds=window.duration)
    for naive in _rule(window, local_from):
        opens = naive.replace(tzinfo=zone).astimezone(UTC)
        if opens >= end:
            return
        if opens + length > start:
            yield opens, opens + length


def freeze_span(freeze: Freeze) -> tuple[datetime, datetime]:
    """A freeze's [from, until) in UTC."""
    zone = _zone(freeze.timezone)
    start, until = timespec.local_moment(freeze.start), timespec.local_moment(freeze.until)
    assert start is not None and until is not None  # validation checked them
    return start.replace(tzinfo=zone).astimezone(UTC), until.replace(tzinfo=zone).astimezone(UTC)


def _frozen_at(
    moment: datetime, spans: Sequence[tuple[Freeze, datetime, datetime]]
) -> tuple[Freeze, datetime] | None:
    for freeze, start, until in spans:
        if start <= moment < until:
            return freeze, until
    return None


def gate(windows: Sequence[Window], freezes: Sequence[Freeze], now: datetime) -> Gate:
    """Whether a disruptive step may start at ``now`` (aware); if not, when one may."""
    # Cached: one plan asks for every host of a set at the same moment.
    return _gate(tuple(windows), tuple(freezes), now.astimezone(UTC))


def _intervals(
    windows: tuple[Window, ...], now: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, Window | None]]:
    """Every window's occurrences from ``now`` on, in the order they open (lazily)."""
    if not windows:
        yield now, end, None
        return
    streams = [((o, c, i) for o, c in occurrences(w, now, end)) for i, w in enumerate(windows)]
    for opens, closes, index in heapq.merge(*streams):
        yield opens, closes, windows[index]


@functools.lru_cache(maxsize=256)
def _gate(windows: tuple[Window, ...], freezes: tuple[Freeze, ...], now: datetime) -> Gate:
    end = now + HORIZON
    spans = [(f, *freeze_span(f)) for f in freezes]
    spans = [s for s in spans if s[2] > now]
    # In opening order the first occurrence with an unfrozen moment is the earliest
    # one: a freeze pushes every occurrence's moment the same way.
    for opens, closes, window in _intervals(windows, now, end):
        moment = max(opens, now)
        pushed: Freeze | None = None
        for _ in range(len(spans) + 1):  # each freeze can push the moment once
            frozen = _frozen_at(moment, spans)
            if frozen is None:
                break
            pushed, moment = frozen
        else:
            continue
        if moment >= closes:
            continue
        if moment == now:
            if window is None:
                return OPEN
            return Gate(True, closes=closes, zone=window.timezone)
        now_frozen = _frozen_at(now, spans)
        return Gate(
            False,
            _why(now, moment, window, now_frozen[0] if now_frozen else None, pushed),
            opens=moment,
        )
    frozen = _frozen_at(now, spans)
    what = _frozen_words(frozen[0]) + "; " if frozen else ""
    return Gate(False, f"{what}no maintenance window opens in the next {HORIZON.days} days")


def _frozen_words(freeze: Freeze) -> str:
    return f"frozen until {freeze.until} {freeze.timezone} ({freeze.reason})"


def in_words(delta: timedelta) -> str:
    """``3 h 12 min``, ``2 d 4 h``, ``45 s`` (rounded up to the minute past a minute)."""
    seconds = max(0, math.ceil(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def moment_words(moment: datetime, zone_name: str, now: datetime) -> str:
    """``Sat 02:00 Europe/Berlin`` within a week of ``now``, else with the date."""
    local = moment.astimezone(_zone(zone_name))
    if moment - now < timedelta(days=6):
        return f"{local:%a %H:%M} {zone_name}"
    return f"{local:%a %Y-%m-%d %H:%M} {zone_name}"


def _why(
    now: datetime,
    moment: datetime,
    window: Window | None,
    frozen: Freeze | None,
    pushed: Freeze | None,
) -> str:
    """``frozen``: the freeze ``now`` is in; ``pushed``: the one that moved the opening."""
    zone_name = window.timezone if window is not None else (frozen or pushed or _UTC).timezone
    when = f"{moment_words(moment, zone_name, now)} (in {in_words(moment - now)})"
    if window is None:
        assert frozen is not None
        return f"{_frozen_words(frozen)}: disruptive steps wait until {when}"
    if frozen is not None:
        return f"{_frozen_words(frozen)}; waiting for the window that opens {when}"
    if pushed is not None:
        return (
            f"waiting for the window that opens {when}, after the freeze until "
            f"{pushed.until} {pushed.timezone} ({pushed.reason})"
        )
    return f"waiting for the window that opens {when}"


_UTC = Freeze("", "", "UTC", "")


def describe_open(state: Gate, now: datetime) -> str:
    """An open gate under windows, in words (for the plan's gate line); "" without windows."""
    if state.closes is None:
        return ""
    return (
        f"maintenance window open until {moment_words(state.closes, state.zone, now)} "
        f"(for {in_words(state.closes - now)}): installs start only while it is open"
    )
