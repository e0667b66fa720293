"""`plan` and `status` exit codes as README's table has them, against a simulated fleet.

0 complete, 1 a host not reached or trusted (the plan still printed), and with
``plan --detailed-exitcode`` 2 for pending changes (terraform's convention).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.commands.plan import exit_status, not_observed
from reconciler.config.load import load_config
from reconciler.plan import make_plan
from reconciler.sim import hostkeys
from reconciler.sim.fleet import SimFleet
from tests.commands.cli import reconciler
from tests.conftest import example_fleet_in
from tests.facts.factories import all_tested, example_config, fleet_synced

REFUSED = "connection refused (is sshd running, and on this port?)"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    # Its own fleet: the last test powers a host off.
    yield from example_fleet_in(tmp_path_factory.mktemp("exit-codes"))


def _repo(fleet: SimFleet) -> Path:
    return fleet.repo  # type: ignore[attr-defined,no-any-return]


def test_plan_exits_0_and_2_with_detailed_exitcode_when_changes_are_pending(
    fleet: SimFleet,
) -> None:
    key = str(fleet.client_key)
    plain = reconciler("plan", str(_repo(fleet)), "--ssh-key", key)
    assert plain.returncode == 0, plain.stderr
    assert "Total: " in plain.stdout and plain.stderr == ""
    detailed = reconciler(
        "plan", str(_repo(fleet)), "--ssh-key", key, "--detailed-exitcode", "--format", "json"
    )
    assert detailed.returncode == 2, detailed.stderr
    assert json.loads(detailed.stdout)["in_sync"] is False
    status = reconciler("status", str(_repo(fleet)), "--ssh-key", key)
    assert status.returncode == 0, status.stderr


def test_detailed_exitcode_is_0_when_nothing_is_to_do() -> None:
    config = example_config()
    facts = fleet_synced(config)
    plan = make_plan(config, facts, all_tested(config))
    assert plan.in_sync and not_observed(plan, facts) == {}
    assert exit_status(plan, {}, offline=False, detailed=True) == 0
    # Offline, a host without recorded facts is a pending change, not an error.
    assert exit_status(plan, {"web2": "no facts"}, offline=True, detailed=True) == 0
    assert exit_status(plan, {"web2": "refused"}, offline=False, detailed=True) == 1


def test_changed_host_key_fails_plan_and_status(fleet: SimFleet, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(_repo(fleet), repo)
    config = load_config(repo)
    web2 = config.host("web2")
    known = (repo / "known_hosts").read_text()
    impostor = hostkeys.public_key_line("impostor")
    known = known.replace(hostkeys.public_key_line("web2"), impostor)
    (repo / "known_hosts").write_text(known)
    key = str(fleet.client_key)
    for extra in ((), ("--detailed-exitcode",)):
        done = reconciler("plan", str(repo), "--ssh-key", key, *extra)
        assert done.returncode == 1, (extra, done.stdout, done.stderr)
        # The plan is printed all the same; web2 is named once per line.
        assert f"web2: unreachable: host key CHANGED: {web2.address} offered" in done.stdout
        assert "web2: unreachable: web2" not in done.stdout
        assert done.stderr.startswith("reconciler: error: web2: host key CHANGED: ")
        assert "refusing to connect" in done.stderr
        assert done.stderr.rstrip().endswith(
            "reconciler: 1 host could not be reached or trusted; what they need is unknown"
        )
    status = reconciler("status", str(repo), "--ssh-key", key, "--format", "json")
    assert status.returncode == 1
    rows = {row["host"]: row for row in json.loads(status.stdout)["hosts"]}
    assert rows["web2"]["reachable"] is False
    assert rows["web2"]["error"].startswith("host key CHANGED")
    assert rows["web1"]["reachable"] is True


def test_stopped_host_fails_plan_and_status_in_words(fleet: SimFleet) -> None:
    key = str(fleet.client_key)
    web2 = fleet.address("web2")
    fleet.ssh("web2", "shutdown -p now", timeout=30)
    deadline = time.monotonic() + 30
    while fleet.state("web2").get("power") != "off" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fleet.state("web2").get("power") == "off"
    plan = reconciler("plan", str(_repo(fleet)), "--ssh-key", key, "--detailed-exitcode")
    assert plan.returncode == 1, plan.stderr
    reason = f"cannot connect to {web2}:22: {REFUSED}"
    assert f"web2: unreachable: {reason}" in plan.stdout
    assert f"reconciler: error: web2: {reason}\n" in plan.stderr
    assert "Errno" not in plan.stdout + plan.stderr
    status = reconciler("status", str(_repo(fleet)), "--ssh-key", key)
    assert status.returncode == 1
    assert f"web2: {reason}" in status.stdout
    assert status.stdout.splitlines()[0].split()[:3] == ["HOST", "SET", "STAGE"]
