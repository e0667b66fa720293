"""Shared fixtures: simulated fleets over real sshd (see reconciler/sim/fleet.py).

- ``fresh_subnet()`` -> "127.0.N": a loopback /24 no other fleet (in this or
  any concurrent test process) uses; held by an flock until the process ends.
- ``sim_fleet_factory(repo, **timings) -> SimFleet`` (function scope): every
  fleet it starts is torn down when the test ends, pass or fail.
- ``example_fleet`` (session scope): a copy of example-repo on its own subnet
  and its running fleet, fast timings. Attributes used by tests:
  ``example_fleet.repo`` (the copy, a committed git repo) and the SimFleet API.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from reconciler.sim.subnets import reserve_subnet

# shutdown(8) returns at once; the host goes down shutdown_seconds later (rc.shutdown).
FAST = {"build_seconds": 0.6, "install_seconds": 0.3, "boot_seconds": 0.3, "shutdown_seconds": 0.5}


def fresh_subnet() -> str:
    """A loopback subnet 127.0.N reserved for this process (see reconciler.sim.subnets)."""
    return reserve_subnet()


def ssh_ok(fleet: SimFleet, host: str, command: str, timeout: float = 60) -> str:
    """stdout of ``command`` on a simulated host over real SSH; fails the test unless it exits 0."""
    done = fleet.ssh(host, command, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def sim_fleet_factory(tmp_path: Path) -> Iterator[Callable[..., SimFleet]]:
    fleets: list[SimFleet] = []
    counter = itertools.count()

    def start(repo: Path | None = None, **options: Any) -> SimFleet:
        settings = FAST | options
        if settings.get("hosts") is not None:
            settings.setdefault("subnet", fresh_subnet())
        fleet = SimFleet.up(tmp_path / f"fleet{next(counter)}", repo=repo, **settings)
        fleets.append(fleet)
        return fleet

    try:
        yield start
    finally:
        for fleet in fleets:
            with contextlib.suppress(Exception):
                fleet.down()


def example_fleet_in(base: Path) -> Iterator[SimFleet]:
    """A copy of example-repo on a fresh subnet and its running fleet (``.repo``), then down."""
    repo = copy_example_repo(base / "repo", subnet=fresh_subnet())
    fleet = SimFleet.up(base / "fleet", repo=repo, **FAST)
    fleet.repo = repo  # type: ignore[attr-defined]
    try:
        yield fleet
    finally:
        fleet.down()


@pytest.fixture(scope="session")
def example_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    yield from example_fleet_in(tmp_path_factory.mktemp("example-fleet"))


#: Files that run for minutes (whole rollouts on a simulated fleet), scheduled
#: first: `make test` hands whole files to two workers (--dist loadfile) in
#: collection order, so a long file collected last keeps one worker busy alone
#: at the end while the other idles.
LONG_FIRST = (
    "tests/rollout/test_rollout_sim.py",
    "tests/rollout/test_rollout_recovery.py",
    "tests/rollout/test_one_decider.py",
    "tests/rollout/",
    "tests/scale/",
    "tests/daemon/",
    "tests/observe/",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath

    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(root).as_posix()
        return next(
            (i for i, prefix in enumerate(LONG_FIRST) if path.startswith(prefix)), len(LONG_FIRST)
        )

    items.sort(key=rank)  # stable: within a file, the order stays as written
