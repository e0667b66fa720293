"""`rollout.drift: report` under the daemon: one drift record per host per generation.

The generation is reported converged with drift, not retried every poll; the
hand edit stays on the host until a person acts; a new generation that
leaves the file as it is reports it once more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.sim.fleet import SimFleet
from tests.daemon.test_daemon_e2e import Site


@pytest.fixture
def site(tmp_path: Path, sim_fleet_factory: Callable[..., SimFleet]) -> Site:
    s = Site(tmp_path, sim_fleet_factory)
    yield s  # type: ignore[misc]
    s.stop_all()


def test_drift_report_is_recorded_once_per_generation(site: Site) -> None:
    first = site.edit(
        "buildsets/lab/buildset.yaml", r"^  install: boot-environment",
        "  install: boot-environment\n  drift: report", "lab: report drift, do not heal it",
    )  # fmt: skip
    site.start()
    site.push()
    site.wait(lambda: site.converged_on(first), "the first generation to converge", 150)
    installs = site.installs()

    path = site.fleet.host_path("web1", "/etc/make.conf")
    path.write_text(path.read_text() + "CFLAGS+=-O3 # tuned by hand\n")

    def drift_records() -> list[str]:
        return [
            e.generation or "" for e in site.entries() if e.host == "web1" and e.outcome == "drift"
        ]

    def polls() -> int:  # each poll of a converged generation ends with its summary
        return sum(1 for e in site.events() if e["event"] == "rollout.summary")

    site.wait(lambda: len(drift_records()) == 1, "the drift to be recorded", 120)
    # The poll that recorded it goes on to record the set ("converged; drift
    # left as is"): the ledger's head is taken once that poll has ended.
    during = polls()
    site.wait(lambda: polls() > during, "the poll that recorded the drift to end", 120)
    head = site.entries()[0].commit
    before = polls()
    site.wait(lambda: polls() >= before + 4, "four more polls", 120)
    # Left as is, recorded once, and the generation stays converged: no record per poll.
    assert "tuned by hand" in site.make_conf("web1")
    assert drift_records() == [first]
    assert site.entries()[0].commit == head
    assert site.converged_on(first)
    assert site.installs() == installs
    drift = next(e for e in site.entries() if e.outcome == "drift")
    assert drift.step == "report-drift" and "make.conf differs" in drift.subject

    # A new generation that changes no rendered byte: the drift is reported once more.
    readme = site.checkout / "README.md"
    readme.write_text(readme.read_text() + "\nnote\n")
    second = site.commit("README only")
    site.push()
    site.wait(lambda: len(drift_records()) == 2, "the drift of the new generation", 150)
    story = [(e.subject, e.generation) for e in site.entries()[:8]]
    assert sorted(drift_records()) == sorted([first, second]), (first, second, story)
    time.sleep(5)  # a couple of polls more: still two
    assert len(drift_records()) == 2
    assert site.installs() == installs
