"""The reconcile loop with a scripted converge, a fake clock, real git repos and a real ledger."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reconciler.daemon.jobs import Hooks
from reconciler.daemon.logs import EventLog
from reconciler.daemon.loop import Daemon
from reconciler.daemon.mirror import Mirror, resolve_origin
from reconciler.daemon.state import judge, load_state
from reconciler.settings import Settings
from reconciler.vocabulary import HostOutcome as O
from tests.daemon.daemon_helpers import (
    FakeClock,
    ScriptedConverge,
    Upstream,
    fake_load,
    wait_for,
)


class Harness:
    def __init__(self, tmp: Path, **settings: object) -> None:
        self.up = Upstream.create(tmp)
        self.settings = Settings(
            repo=str(self.up.bare),
            work_dir=str(tmp / "work"),
            poll_interval=60.0,
            **settings,  # type: ignore[arg-type]
        )
        self.converge = ScriptedConverge()
        self.clock = FakeClock()
        self.thread: threading.Thread | None = None
        self.exit: list[int] = []
        self.daemon: Daemon | None = None

    def make(self) -> Daemon:
        mirror = Mirror(self.settings.work_path, resolve_origin(self.settings.repo), "main")
        mirror.ensure()
        hooks = Hooks(converge=self.converge, load_config=fake_load, clock=self.clock)
        signers = Path(self.settings.allowed_signers) if self.settings.allowed_signers else None
        self.daemon = Daemon(
            self.settings, mirror, hooks=hooks, allowed_signers=signers, log=EventLog()
        )
        return self.daemon

    def push(self, text: str, message: str = "change", **kw: object) -> str:
        sha = self.up.commit({"sets.txt": text}, message, **kw)  # type: ignore[arg-type]
        self.up.push()
        if self.daemon is not None:
            self.daemon.notify_change()
        return sha

    def start(self) -> Daemon:
        daemon = self.make()
        self.thread = threading.Thread(target=lambda: self.exit.append(daemon.run()), daemon=True)
        self.thread.start()
        return daemon

    def stop(self) -> int:
        assert self.daemon is not None and self.thread is not None
        self.daemon.request_shutdown()
        self.thread.join(20)
        assert not self.thread.is_alive(), "daemon did not stop"
        return self.exit[0]

    def outcomes(self) -> list[tuple[str, str]]:
        return [(t.get("outcome", ""), t.get("generation", "")) for t in self.up.ledger_trailers()]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_new_commit_is_validated_recorded_and_converged(h: Harness) -> None:
    sha = h.push("lab heal\n")
    assert h.make().run(once=True) == 0
    assert h.converge.generations() == [sha]
    assert h.converge.calls[0].buildsets == ()  # every build set, each under its own policy
    assert ("validated", sha) in h.outcomes()  # reached the origin: the ledger pushes
    assert h.daemon is not None
    state = load_state(h.daemon.mirror.path.with_suffix(".state.json"))
    assert (state.generation, state.status) == (sha, "converged")


def test_bad_config_is_rejected_with_every_problem_and_nothing_runs(h: Harness) -> None:
    good = h.push("lab heal\n")
    assert h.make().run(once=True) == 0
    bad = h.push("invalid\n", "break it")
    assert h.make().run(once=True) == 1
    # Only drift checks of the last good generation ran; the bad one never reached converge.
    assert set(h.converge.generations()) == {good}
    assert h.outcomes()[0] == ("rejected", bad)
    trailers = h.up.ledger_trailers()[0]
    assert trailers["stage"] == "config"
    body = h.up.ledger_body()
    assert "fleet.yaml:3:1: source.revision must be 40 hex digits" in body
    assert "buildsets/lab/buildset.yaml:7:5: unknown host 'nosuch'" in body


def test_rejection_is_recorded_once_not_every_poll(h: Harness) -> None:
    h.push("invalid\n")
    daemon = h.start()
    wait_for(lambda: daemon.state.rejected is not None, what="rejection")
    before = h.clock.sleeps
    wait_for(lambda: h.clock.sleeps > before + 20, what="more polls")
    assert h.stop() == 0
    # A restart re-checks the refused tip (signers may have changed) but does not record it again.
    assert h.make().run(once=True) == 1
    assert [o for o, _ in h.outcomes()] == ["rejected"]
    assert h.converge.calls == []


def test_failed_generation_is_not_retried_until_a_new_commit(h: Harness) -> None:
    bad = h.push("lab heal\n", "first")
    h.converge.behaviour[bad] = "fail"
    daemon = h.start()
    wait_for(lambda: daemon.state.status == "failed", what="failure")
    before = h.clock.sleeps
    wait_for(lambda: h.clock.sleeps > before + 20, what="more polls")
    assert h.converge.generations() == [bad]
    fixed = h.push("lab heal\n", "fix")
    wait_for(lambda: daemon.state.status == "converged", what="the new commit to converge")
    assert h.stop() == 0
    assert h.converge.generations()[:2] == [bad, fixed]
    # Nor after a restart: the failure is remembered in the state file.
    h.converge.calls.clear()
    assert daemon.state.generation == fixed


def test_a_broken_build_is_not_rebuilt_every_poll(h: Harness) -> None:
    sha = h.push("lab heal\n")
    h.converge.behaviour[sha] = "halt"
    daemon = h.start()
    wait_for(lambda: daemon.state.status == "failed", what="failure")
    before = h.clock.sleeps
    wait_for(lambda: h.clock.sleeps > before + 20, what="more polls")
    assert h.stop() == 0
    assert h.converge.generations() == [sha]


def test_failed_generation_stays_failed_across_restart(h: Harness) -> None:
    bad = h.push("lab heal\n")
    h.converge.behaviour[bad] = "fail"
    assert h.make().run(once=True) == 1
    assert h.make().run(once=True) == 1
    assert h.converge.generations() == [bad]


def test_converged_generation_is_rechecked_each_poll(h: Harness) -> None:
    sha = h.push("web heal\ndb report\n")
    daemon = h.start()
    wait_for(lambda: daemon.state.status == "converged", what="convergence")
    wait_for(lambda: len(h.converge.calls) >= 8, what="drift checks")
    assert h.stop() == 0
    calls = list(h.converge.calls)
    assert all(c.generation == sha for c in calls)
    # One converge per poll for every build set: each set's drift policy is the planner's.
    assert {c.buildsets for c in calls} == {()}
    # One validated record; drift checks do not add daemon records (the engine records drift).
    assert [o for o, _ in h.outcomes()] == ["validated"]


def test_unreachable_host_is_retried_at_the_next_poll(h: Harness) -> None:
    sha = h.push("lab heal\n")
    h.converge.behaviour[sha] = "unreachable"
    daemon = h.start()
    wait_for(lambda: len(h.converge.calls) >= 3, what="retries")
    assert daemon.state.status == "incomplete"
    h.converge.behaviour[sha] = "ok"
    wait_for(lambda: daemon.state.status == "converged", what="convergence")
    assert h.stop() == 0


def test_newer_commit_mid_rollout_stops_the_old_one_and_applies_the_new(h: Harness) -> None:
    old = h.push("lab heal\n", "old")
    h.converge.behaviour[old] = "block"
    daemon = h.start()
    wait_for(h.converge.running.is_set, what="the rollout to start")
    new = h.push("lab heal\n", "new")
    wait_for(
        lambda: daemon.state.generation == new and daemon.state.status == "converged",
        what="the newer generation",
    )
    assert h.stop() == 0
    gens = h.converge.generations()
    assert gens[0] == old and gens[1] == new
    assert ("validated", new) in h.outcomes()


def test_bad_newer_commit_does_not_stop_a_good_rollout(h: Harness) -> None:
    good = h.push("lab heal\n", "good")
    h.converge.behaviour[good] = "block"
    daemon = h.start()
    wait_for(h.converge.running.is_set, what="the rollout to start")
    bad = h.push("invalid\n", "bad")
    wait_for(lambda: daemon.state.rejected == bad, what="the rejection")
    assert daemon.state.generation == good
    before = h.clock.sleeps
    wait_for(lambda: h.clock.sleeps > before + 5, what="more polls")
    assert len(h.converge.calls) == 1 and not h.converge.stops[0].is_set()
    assert h.stop() == 0


def test_shutdown_mid_rollout_exits_0_and_the_next_start_resumes(h: Harness) -> None:
    sha = h.push("lab heal\n")
    h.converge.behaviour[sha] = "block"
    daemon = h.start()
    wait_for(h.converge.running.is_set, what="the rollout to start")
    assert h.stop() == 0
    assert daemon.state.status == "applying"
    h.converge.behaviour[sha] = "ok"
    assert h.make().run(once=True) == 0
    assert h.converge.generations() == [sha, sha]
    assert [o for o, _ in h.outcomes()] == ["validated"]  # resumed, not validated again


def test_engine_bug_marks_the_generation_failed_and_the_loop_survives(h: Harness) -> None:
    sha = h.push("lab heal\n")
    h.converge.behaviour[sha] = "raise"
    daemon = h.start()
    wait_for(lambda: daemon.state.status == "failed", what="failure")
    assert "engine bug" in daemon.state.reason
    assert h.stop() == 0


def test_request_poll_runs_a_drift_check_now(tmp_path: Path) -> None:
    from reconciler.clock import SystemClock

    h = Harness(tmp_path)
    h.clock = SystemClock()  # type: ignore[assignment]
    h.push("lab heal\n")
    daemon = h.start()
    wait_for(lambda: daemon.state.status == "converged", what="convergence")
    assert len(h.converge.calls) == 1  # the 60 s poll is far away
    daemon.request_poll()
    wait_for(lambda: len(h.converge.calls) == 2, timeout=5, what="the SIGHUP poll")
    assert h.stop() == 0


def test_judge() -> None:
    assert judge(True, False, [O.SUCCESS]) == "converged"
    assert judge(False, True, [O.SUCCESS]) == "interrupted"
    assert judge(False, True, [O.FAILURE]) == "failed"
    assert judge(False, False, [O.ROLLED_BACK, O.SUCCESS]) == "failed"
    assert judge(False, False, [O.UNREACHABLE, O.DRIFT]) == "incomplete"
    # Halted at the source or build stage: no host started, none to retry every poll.
    assert judge(False, False, [O.SKIPPED, O.SKIPPED]) == "failed"
    assert judge(False, False, [O.UNREACHABLE, O.SKIPPED]) == "incomplete"
    assert judge(False, True, []) == "interrupted"


def test_the_same_wait_is_warned_once_not_at_every_poll(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    sha = h.push("lab heal\n")
    h.converge.behaviour[sha] = "unreachable"
    caplog.set_level("DEBUG")
    daemon = h.start()
    wait_for(lambda: len(h.converge.calls) >= 4, what="retries")

    def incomplete(level: str) -> int:
        return sum(
            1
            for r in caplog.records
            if r.levelname == level and "not every host is on" in r.getMessage()
        )

    assert incomplete("WARNING") == 1
    assert incomplete("DEBUG") >= 2  # still said, for whoever runs with -v
    h.converge.behaviour[sha] = "ok"
    wait_for(lambda: daemon.state.status == "converged", what="convergence")
    h.converge.behaviour[sha] = "unreachable"
    wait_for(lambda: incomplete("WARNING") == 2, what="a new wait after convergence")
    assert h.stop() == 0
