"""The read model's rules (pure): desired vs running, in sync, reachable, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.ledger import Entry
from reconciler.readmodel import LedgerSnapshot, LiveState, build_view
from reconciler.readmodel.build import last_build
from reconciler.rollout.engine_types import Event, HostResult, Report
from reconciler.vocabulary import EventKind
from tests.daemon.daemon_helpers import fake_config

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def _facts(build: str | None, revision12: str, reachable: bool = True) -> dict[str, object]:
    return {"reachable": reachable, "marker": {"build": build},
            "versions": {"source": {"revision12": revision12}}, "new": "ignored"}  # fmt: skip


def _entry(commit: str, minutes: int, **trailers: str) -> Entry:
    return Entry(commit * 40, T0 + timedelta(minutes=minutes), f"subject {commit}", "", trailers)


def test_running_equals_desired_is_in_sync_unless_the_last_outcome_failed() -> None:
    config = fake_config("c" * 40, "lab heal\nweb heal\n")
    view0 = build_view(LedgerSnapshot("reconciler/status"), config=config)
    desired = {bs.name: bs.desired_build for bs in view0.buildsets}
    revision = config.source.short
    snapshot = LedgerSnapshot(
        "reconciler/status",
        tip="f" * 40,
        host_files={
            "lab-h1": {"outcome": "success", "at": "2026-11-25T14:00:00Z",
                       "facts": _facts(desired["lab"], revision)},
            "web-h1": {"outcome": "rolled-back", "facts": _facts(desired["web"], revision)},
        },
        members={"lab": ("lab-h1",), "web": ("web-h1",)},
    )  # fmt: skip
    view = build_view(snapshot, config=config)
    hosts = {h.name: h for h in view.hosts()}
    assert hosts["lab-h1"].in_sync and hosts["lab-h1"].reachable is True
    assert not hosts["web-h1"].in_sync  # runs the build, but its last outcome was a rollback
    assert hosts["lab-h1"].running_revision == hosts["lab-h1"].desired_revision == revision


def test_the_daemons_last_report_is_newer_than_the_ledger_and_wins() -> None:
    config = fake_config("c" * 40, "lab heal\n")
    desired = build_view(LedgerSnapshot("b"), config=config).buildsets[0].desired_build
    snapshot = LedgerSnapshot(
        "b",
        host_files={"lab-h1": {"outcome": "success", "at": "2026-11-25T14:00:00Z",
                               "facts": _facts(desired, config.source.short)}},
    )  # fmt: skip
    live = LiveState(now=lambda: T0 + timedelta(hours=1))
    live.job_started("drift", "c" * 40, config)
    live.job_finished("c" * 40, Report(False, False, (
        HostResult("lab-h1", "lab", "test", "unreachable", "timed out"),), ()))  # fmt: skip
    (host,) = build_view(snapshot, config=config, live=live.snapshot()).hosts()
    assert host.reachable is False and host.in_sync is False
    # A report about another generation says nothing about this one.
    other = LiveState(now=lambda: T0 + timedelta(hours=1))
    other.job_finished("d" * 40, Report(False, False, (
        HostResult("lab-h1", "lab", "test", "unreachable", "timed out"),), ()))  # fmt: skip
    (host,) = build_view(snapshot, config=config, live=other.snapshot()).hosts()
    assert host.reachable is True and host.in_sync is True


def test_progress_keeps_the_last_build_line_and_the_last_step_per_set() -> None:
    config = fake_config("c" * 40, "lab heal\n")
    live = LiveState()
    live.job_started("apply", "c" * 40, config)
    live.event(Event(EventKind.BUILD, "stage 4.2: building libraries", "lab", "lab-h1"))
    live.event(Event(EventKind.BUILD, "stage 4.3: building everything", "lab", "lab-h1"))
    live.event(Event(EventKind.HOST, "rebooting (rebooting)", "lab", "lab-h1"))
    live.event(Event(EventKind.INFO, "in sync", "lab"))  # not a step: leaves the progress alone
    (bs,) = build_view(LedgerSnapshot("b"), config=config, live=live.snapshot()).buildsets
    assert bs.progress is not None and bs.progress.running
    assert bs.progress.build_line == "stage 4.3: building everything"
    assert (bs.progress.host, bs.progress.message) == ("lab-h1", "rebooting (rebooting)")
    live.job_finished("c" * 40, None)
    (bs,) = build_view(LedgerSnapshot("b"), config=config, live=live.snapshot()).buildsets
    assert bs.progress is not None and not bs.progress.running


def test_the_last_build_and_its_duration_come_from_its_commits() -> None:
    b = "9" * 64
    entries = [  # newest first, as the ledger lists them
        _entry("4", 30, buildset="lab", stage="test", outcome="success", build=b),
        _entry("3", 25, buildset="lab", stage="build", outcome="success", build=b, host="h"),
        _entry("2", 5, buildset="lab", stage="build", outcome="started", build=b, host="h"),
        _entry("1", 0, buildset="lab", stage="build", outcome="failure", build="8" * 64),
    ]
    build = last_build("lab", entries)
    assert build is not None and build.result == "success" and build.duration_seconds == 1200
    running = last_build("lab", entries[2:])
    assert running is not None and running.result == "started" and running.duration_seconds is None
    assert last_build("other", entries) is None
