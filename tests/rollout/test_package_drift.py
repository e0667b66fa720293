"""Drift among the managed packages, and a dropped ``packages:`` block, end to end (issue 11).

One lab (tests/rollout/test_packages_rollout.py's: lab with builder and
tester in boot environments, db with db1 in place), db under ``drift:
report``, the scenarios in order:

1. the packages roll out; then by hand: www/nginx deleted on builder (lab,
   production, heal), databases/postgresql16-server deleted on db1 (report),
   sysutils/tmux installed on tester (not managed there: never drift);
2. ``plan`` (json, markdown; text: what apply prints) and ``status`` show each host's drift;
3. ``apply`` reinstalls nginx on builder in place (same BE, no reboot) and
   records it healed; db1 gets one drift record and keeps its change;
4. a second ``apply`` records nothing (the drift of this generation is
   reported already);
5. lab's ``packages:`` block dropped: what the reconciler installed on
   builder and tester is removed, tester's own tmux stays.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.gitutil import git, identity_env
from reconciler.remote import PKG_MARKER
from reconciler.sim.fleet import SimFleet
from tests.packages_overlay import add_packages
from tests.rollout.conftest import ROOT, Lab, _lab
from tests.rollout.test_packages_rollout import LAB, SCHEMAS, packages

DB = "buildsets/db/buildset.yaml"


def _packages_db_reports(repo: Path) -> None:
    add_packages(repo)
    path = repo / DB
    path.write_text(
        path.read_text(encoding="utf-8").replace("rollout:\n", "rollout:\n  drift: report\n", 1),
        encoding="utf-8",
    )


@pytest.fixture
def drift_lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    return _lab(
        sim_fleet_factory, tmp_path, drop=("web1", "web2", "db2"), before=_packages_db_reports
    )


def plan(lab: Lab, form: str) -> str:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "reconciler", "plan", str(lab.repo)),
            *("--format", form, "--ssh-key", str(lab.fleet.client_key)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def status(lab: Lab) -> dict[str, Any]:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "reconciler", "status", str(lab.repo)),
            *("--format", "json", "--ssh-key", str(lab.fleet.client_key)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    body: dict[str, Any] = json.loads(out.stdout)
    jsonschema.validate(body, json.loads((SCHEMAS / "status-command.schema.json").read_text()))
    return body


def host_steps(document: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    sets = document["buildsets"]
    assert isinstance(sets, list)
    for stage in [st for b in sets for st in b["stages"]]:
        for host in stage["hosts"]:
            found.setdefault(host["host"], []).extend(host["steps"])
    return found


def test_package_drift_is_healed_or_reported_and_a_dropped_block_removes(drift_lab: Lab) -> None:
    lab, fleet = drift_lab, drift_lab.fleet
    first = lab.apply()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    be, tester_be = lab.booted_be("builder"), lab.booted_be("tester")
    boots = fleet.count("builder", "boot")
    assert "www/nginx" in packages(lab, "builder")
    assert "databases/postgresql16-server" in packages(lab, "db1")

    # 1. by hand
    fleet.ssh("builder", "pkg delete -y www/nginx")
    fleet.ssh("db1", "pkg delete -y databases/postgresql16-server")
    fleet.ssh("tester", "pkg install -y -r reconciler sysutils/tmux")
    assert "www/nginx" not in packages(lab, "builder")

    # 2. the plan says so, per host, in every format
    document = json.loads(plan(lab, "json"))
    jsonschema.validate(document, json.loads((SCHEMAS / "plan.schema.json").read_text()))
    steps = host_steps(document)
    assert [s["kind"] for s in steps["builder"]] == ["heal-packages"]
    heal = steps["builder"][0]
    assert str(heal["reason"]).startswith("1 package drifted: www/nginx missing")
    assert heal["detail"] == {
        "pkgset": heal["detail"]["pkgset"],  # type: ignore[index]
        "drift": {"missing": ["www/nginx"], "changed": []},
        "reinstall": ["www/nginx"],
    }
    assert [s["kind"] for s in steps["db1"]] == ["report-drift"]
    assert "1 package drifted: databases/postgresql16-server missing" in str(
        steps["db1"][0]["reason"]
    )
    assert steps.get("tester", []) == []  # tmux is not managed on tester
    markdown = plan(lab, "markdown")  # the text plan is the one apply shows, below
    assert "1 package drifted: www/nginx missing" in markdown
    assert "1 package drifted: databases/postgresql16-server missing" in markdown
    rows = {r["host"]: r for r in status(lab)["hosts"]}
    assert rows["builder"]["packages"] == "1 package drifted: www/nginx missing"
    assert not rows["builder"]["in_sync"] and rows["tester"]["in_sync"]

    # 3. heal on builder (in place: same BE, no reboot), report on db1
    before = len(lab.entries())
    healed = lab.apply()
    assert healed.returncode == 0, healed.stdout[-4000:] + healed.stderr[-2000:]
    assert "builder: heal-packages: 1 package drifted: www/nginx missing" in healed.stdout
    assert "db1: report-drift: 1 package drifted: databases/postgresql16-server" in healed.stdout
    assert "www/nginx" in packages(lab, "builder")
    assert lab.booted_be("builder") == be and fleet.count("builder", "boot") == boots
    assert "databases/postgresql16-server" not in packages(lab, "db1")  # reported, left as is
    assert "sysutils/tmux" in packages(lab, "tester")
    new = lab.entries()[before:]
    kinds = {(e.host, e.trailers.get("step"), e.trailers.get("outcome")) for e in new}
    assert ("builder", "heal-packages", "healed") in kinds, [e.subject for e in new]
    assert [e for e in new if e.host == "db1" and e.trailers.get("outcome") == "drift"]
    assert not [e for e in new if e.host == "tester"]

    # 4. again: the report is not repeated, nothing else happens
    before = len(lab.entries())
    again = lab.apply()
    assert again.returncode == 0, again.stdout[-3000:]
    assert len(lab.entries()) == before, [e.subject for e in lab.entries()[before:]]

    # 5. lab lists no packages any more: the reconciler's ones go, nothing else
    text = (lab.repo / LAB).read_text(encoding="utf-8")
    (lab.repo / LAB).write_text(text[: text.index("packages:")], encoding="utf-8")
    shutil.rmtree(lab.repo / "buildsets/lab/ports")
    git(lab.repo, "commit", "-q", "-am", "lab: no packages", env=identity_env())
    removed = lab.apply()
    assert removed.returncode == 0, removed.stdout[-4000:] + removed.stderr[-2000:]
    shown = removed.stdout  # the plan apply carried out
    assert "builder: remove-packages: buildset.yaml lists no packages: 4 packages" in shown
    assert "tester: remove-packages: buildset.yaml lists no packages: 3 packages" in shown
    assert "tester: confirm:" not in shown  # the world it runs was confirmed: not tested again
    assert lab.booted_be("tester") == tester_be and lab.booted_be("builder") == be
    managed = {"www/nginx", "security/sudo", "py311-six"}
    assert not (managed | {"sysutils/tmux"}) & set(packages(lab, "builder"))
    assert "ports-mgmt/pkg" in packages(lab, "builder")  # not the reconciler's to remove
    left = set(packages(lab, "tester"))
    assert not managed & left and "sysutils/tmux" in left  # tester's own stays
    for host in ("builder", "tester"):
        assert fleet.ssh(host, f"test -e {PKG_MARKER} || echo gone").stdout == "gone\n"
    assert "databases/postgresql16-server" not in packages(lab, "db1")  # db: still reported
