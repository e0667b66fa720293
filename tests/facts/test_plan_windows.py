"""Maintenance windows and freezes (pure): open or closed at a moment, and when they open.

Times are fixed moments (the wall clock is injected), in real IANA zones,
across the Europe/Berlin DST changes of 2027 (28 March, 31 October).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from reconciler.config.buildid import build_id
from reconciler.config.model import Config, Freeze, Window
from reconciler.plan import format_markdown, format_text, make_plan
from reconciler.plan.windows import gate, in_words, occurrences
from reconciler.progress import HostProgress, SetProgress
from reconciler.vocabulary import Phase, StepKind
from tests.facts.factories import example_config, fleet_synced, fresh

BERLIN = ZoneInfo("Europe/Berlin")
WEEKEND = Window(start="02:00", duration=4 * 3600, timezone="Europe/Berlin", days=("SA", "SU"))


def at(*parts: int, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def test_closed_says_when_the_window_opens() -> None:
    state = gate([WEEKEND], [], at(2026, 12, 4, 22, 48))  # a Friday evening
    assert not state.open
    assert state.why == "waiting for the window that opens Sat 02:00 Europe/Berlin (in 3 h 12 min)"
    assert state.opens == datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_open_inside_and_closed_at_the_end() -> None:
    assert gate([WEEKEND], [], at(2026, 12, 5, 2, 0)).open  # the opening minute counts
    inside = gate([WEEKEND], [], at(2026, 12, 6, 5, 59))
    assert inside.open and inside.closes == datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    after = gate([WEEKEND], [], at(2026, 12, 6, 6, 0))  # the end is exclusive
    assert not after.open
    assert after.why.startswith("waiting for the window that opens Sat 02:00 Europe/Berlin (in 5 d")


def test_no_windows_means_any_time() -> None:
    assert gate([], [], at(2026, 12, 4, 12, 0)).open


def test_a_freeze_closes_what_a_window_opens_and_says_why() -> None:
    holidays = Freeze("2026-12-05 00:00", "2026-12-06 03:00", "Europe/Berlin", "year end")
    during = gate([WEEKEND], [holidays], at(2026, 12, 5, 3, 0))
    assert not during.open
    assert during.why == (
        "frozen until 2026-12-06 03:00 Europe/Berlin (year end); waiting for the window "
        "that opens Sun 03:00 Europe/Berlin (in 1 d)"
    )
    before = gate([WEEKEND], [holidays], at(2026, 12, 4, 22, 48))
    assert before.opens == at(2026, 12, 6, 3, 0)  # Saturday's window is frozen through
    assert "after the freeze until 2026-12-06 03:00 Europe/Berlin (year end)" in before.why
    alone = gate([], [holidays], at(2026, 12, 5, 12, 0))
    assert alone.why == (
        "frozen until 2026-12-06 03:00 Europe/Berlin (year end): disruptive steps wait "
        "until Sun 03:00 Europe/Berlin (in 15 h)"
    )
    assert gate([], [holidays], at(2026, 12, 6, 3, 0)).open  # until is exclusive


def test_rrule_first_saturday_of_the_month() -> None:
    monthly = Window(start="22:00", duration=7200, timezone="UTC", rrule="FREQ=MONTHLY;BYDAY=1SA")
    state = gate([monthly], [], datetime(2026, 12, 6, 0, 0, tzinfo=UTC))  # just missed it
    assert state.opens == datetime(2027, 1, 2, 22, 0, tzinfo=UTC)
    assert state.why == (
        "waiting for the window that opens Sat 2027-01-02 22:00 UTC (in 27 d 22 h)"
    )


def test_spring_forward_start_in_the_gap_opens_an_hour_later_by_the_clock() -> None:
    # 28 March 2027: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that night.
    night = Window(start="02:30", duration=3600, timezone="Europe/Berlin", days=("SU",))
    start = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    (opens, closes), *_ = occurrences(night, start, start + timedelta(days=2))
    assert opens == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert closes - opens == timedelta(hours=1)  # elapsed time, as written
    week_before = next(occurrences(night, start - timedelta(days=7), start))[0]
    assert week_before == datetime(2027, 3, 21, 1, 30, tzinfo=UTC)  # 02:30 CET


def test_fall_back_window_lasts_its_elapsed_duration() -> None:
    # 31 October 2027: 03:00 CEST falls back to 02:00 CET; a 01:00 + 4h window ends at 04:00 CET.
    night = Window(start="01:00", duration=4 * 3600, timezone="Europe/Berlin", days=("SU",))
    start = datetime(2027, 10, 30, 12, 0, tzinfo=UTC)
    opens, closes = next(occurrences(night, start, start + timedelta(days=2)))
    assert opens == datetime(2027, 10, 30, 23, 0, tzinfo=UTC)  # 01:00 CEST
    assert closes.astimezone(BERLIN).strftime("%H:%M %Z") == "04:00 CET"


def test_durations_in_words() -> None:
    assert in_words(timedelta(seconds=30)) == "30 s"
    assert in_words(timedelta(minutes=59, seconds=1)) == "1 h"
    assert in_words(timedelta(hours=3, minutes=12)) == "3 h 12 min"
    assert in_words(timedelta(days=2, hours=4)) == "2 d 4 h"


def _windowed(window: Window) -> Config:
    config = example_config()
    lab = config.buildset("lab")
    rollout = dataclasses.replace(lab.rollout, windows=(window,))
    lab = dataclasses.replace(lab, rollout=rollout)
    return dataclasses.replace(
        config, buildsets=tuple(lab if b.name == "lab" else b for b in config.buildsets)
    )


def test_plan_holds_installs_not_builds_outside_the_window() -> None:
    config = _windowed(WEEKEND)
    facts = fleet_synced(config)
    facts["tester"] = fresh(config, "tester")
    plan = make_plan(config, facts, now=at(2026, 12, 4, 22, 48))
    lab = plan.buildset("lab")
    tester = lab.stage("test").host("tester")
    assert tester is not None and tester.waits_at is not None
    assert tester.steps[tester.waits_at].kind == StepKind.INSTALL
    assert tester.waiting == (
        "waiting for the window that opens Sat 02:00 Europe/Berlin (in 3 h 12 min)"
    )
    assert not tester.in_sync
    assert any(g.startswith("waiting for the window that opens Sat 02:00") for g in lab.gates)
    assert "waits: install and after: waiting for the window that opens Sat 02:00" in format_text(
        plan
    )
    assert "> **Gate:** waiting for the window that opens Sat 02:00" in format_markdown(plan)
    as_json = lab.to_json()["stages"][2]["hosts"][0]
    assert as_json["waiting"] == tester.waiting and as_json["waits_at"] == tester.waits_at
    inside = make_plan(config, facts, now=at(2026, 12, 5, 3, 0))
    open_tester = inside.buildset("lab").stage("test").host("tester")
    assert open_tester is not None and open_tester.waiting is None
    assert any("window open until Sat 06:00" in g for g in inside.buildset("lab").gates)


def test_a_chain_under_way_finishes_when_the_window_closes() -> None:
    config = _windowed(WEEKEND)
    facts = fleet_synced(config)
    facts["tester"] = fresh(config, "tester")
    lab = config.buildset("lab")
    build = build_id(config, lab)
    for phase, held in ((Phase.INSTALLING, False), (Phase.NONE, True), (Phase.FAILED, True)):
        progress = SetProgress(hosts={"tester": HostProgress(build=build, phase=phase)})
        plan = make_plan(config, facts, {"lab": progress}, now=at(2026, 12, 4, 22, 48))
        tester = plan.buildset("lab").stage("test").host("tester")
        assert tester is not None and (tester.waiting is not None) is held, phase
