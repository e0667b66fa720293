"""Ledger subjects name a host once: the transport error's text leaves the name out.

Before, ``web2: unreachable: web2: host key CHANGED ...``: the error's str began
with the host, and the rollout (rightly) prefixed it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from reconciler.gitutil import git, identity_env
from reconciler.ledger import Ledger
from reconciler.sim import hostkeys
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.commands.cli import reconciler
from tests.conftest import fresh_subnet


def test_untrusted_test_host_is_recorded_once_by_name(
    sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path
) -> None:
    repo = copy_example_repo(tmp_path / "repo", subnet=fresh_subnet())
    fleet = sim_fleet_factory(repo)
    # The lab set without its production hosts, and the tester's pin replaced.
    path = repo / "buildsets" / "lab" / "buildset.yaml"
    path.write_text(re.sub(r"(?m)^  web[12]:.*\n", "", path.read_text()))
    known = repo / "known_hosts"
    known.write_text(
        known.read_text().replace(
            hostkeys.public_key_line("tester"), hostkeys.public_key_line("impostor")
        )
    )
    git(repo, "commit", "-q", "-am", "tester's key as if it had been changed", env=identity_env())

    done = reconciler(
        "apply", str(repo), "--yes", "--buildset", "lab", "--ssh-key", str(fleet.client_key),
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    subjects = [e.subject for e in Ledger(repo).entries(host="tester")]
    unreachable = [s for s in subjects if s.startswith("tester: unreachable: ")]
    assert unreachable, subjects
    assert unreachable[0].startswith("tester: unreachable: host key CHANGED: ")
    assert not [s for s in subjects if s.count("tester:") > 1], subjects
    assert "tester: tester:" not in done.stdout + done.stderr
