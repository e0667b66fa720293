"""The packages half of HB 24.7 end to end, on one simulated fleet (issue 11, docs/packages.md).

lab (boot environments) keeps builder (its build host, production) and
tester (its test host); db (in place) keeps db1. One lab, the scenarios in
order, each starting from where the one before left the fleet:

1. a full rollout with packages converges every host: the set's origins at
   the pinned ports revision's versions, in the new BE (in place on db1);
2. a second apply does nothing;
3. a ports revision bump that also drops one origin rebuilds packages only
   (no buildworld), goes test → production, removes the dropped origin and
   nothing else (a package installed by hand stays);
4. a failed port build installs nothing anywhere;
5. a package failing on the test host leaves production untouched and the
   test host on its previous BE;
6. going back to the first commit reuses its package repository (no
   poudriere bulk).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.pkgsetid import package_set_id
from reconciler.gitutil import git, identity_env
from reconciler.sim import portstree
from reconciler.sim.fleet import SimFleet
from tests.packages_overlay import add_packages
from tests.rollout.conftest import Lab, _lab

LAB = "buildsets/lab/buildset.yaml"
SCHEMAS = Path(__file__).resolve().parents[2] / "schema"


@pytest.fixture
def pkg_lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    return _lab(sim_fleet_factory, tmp_path, drop=("web1", "web2", "db2"), before=add_packages)


def packages(lab: Lab, host: str) -> dict[str, str]:
    """origin (name for a flavored one) -> version, as pkg query on the running system shows."""
    out = lab.fleet.ssh(host, "pkg query '%o %n %v'").stdout
    found = {}
    for line in out.splitlines():
        origin, name, version = line.split()
        found[name if name.startswith("py3") else origin] = version
    return found


def ids(lab: Lab, name: str = "lab") -> tuple[str, str]:
    config = load_config(lab.repo, "HEAD")
    pkgset = package_set_id(config, name)
    assert pkgset is not None
    return build_id(config, name), pkgset


def be_of(lab: Lab) -> str:
    build, pkgset = ids(lab)
    return f"rc-{build[:12]}-{pkgset[:8]}"


def test_packages_follow_the_config_repo(pkg_lab: Lab) -> None:
    lab, fleet = pkg_lab, pkg_lab.fleet
    # 1. everything, from nothing
    first = lab.apply()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert "3 packages to install" in first.stdout  # the plan's per-host words
    first_be, (_, first_set) = be_of(lab), ids(lab)
    for host in ("tester", "builder"):
        assert lab.booted_be(host) == first_be
        have = packages(lab, host)
        assert have["www/nginx"] == "1.26.2,3" and have["security/sudo"] == "1.9.15p5"
        assert have["py311-six"] == "1.16.0"
    assert "sysutils/tmux" in packages(lab, "builder")  # its extra
    assert "sysutils/tmux" not in packages(lab, "tester")
    assert "databases/postgresql16-server" in packages(lab, "db1")  # in place
    # installed by pkg -c into the new BE: the previous one has pkg itself only (the bootstrap)
    before_be = fleet.ssh(
        "tester", "m=$(bectl mount default) && pkg -c $m query %o; bectl umount default"
    )
    assert before_be.stdout == "ports-mgmt/pkg\n", before_be
    first_commit = git(lab.repo, "rev-parse", "HEAD")
    trailers = [e.trailers for e in lab.entries() if e.buildset == "lab"]
    assert all(t.get("packages") == first_set for t in trailers if t.get("host"))
    assert any(t.get("step") == "build-packages" for t in trailers)
    bulks, worlds = fleet.count("builder", "poudriere-bulk"), fleet.count("builder", "buildworld")

    # 2. nothing to do
    before = len(lab.entries())
    again = lab.apply()
    assert again.returncode == 0, again.stdout[-3000:]
    assert "Every host is in sync" in again.stdout and len(lab.entries()) == before

    # 3. new ports revision, one origin fewer: packages only, test before production
    fleet.ssh("tester", "pkg install -y -r reconciler sysutils/tmux")  # by hand: not ours
    text = (lab.repo / LAB).read_text(encoding="utf-8").replace("    - security/sudo\n", "")
    (lab.repo / LAB).write_text(text, encoding="utf-8")
    lab.edit(
        "fleet.yaml",
        rf"revision: {portstree.COMMITS[1]}",
        f"revision: {portstree.COMMITS[2]}",
        "ports: next revision, no sudo",
    )
    status = subprocess.run(
        [
            *(sys.executable, "-m", "reconciler", "status", str(lab.repo)),
            *("--format", "json", "--ssh-key", str(fleet.client_key)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    body = json.loads(status.stdout)
    jsonschema.validate(body, json.loads((SCHEMAS / "status-command.schema.json").read_text()))
    rows = {r["host"]: r for r in body["hosts"]}
    assert rows["tester"]["packages"] == "2 packages to upgrade, 1 package to remove"
    assert rows["db1"]["packages"] == "1 package to upgrade"  # the ports tree is every set's
    bumped = lab.apply()
    assert bumped.returncode == 0, bumped.stdout[-4000:] + bumped.stderr[-2000:]
    assert fleet.count("builder", "buildworld") == worlds  # the world is the same
    assert fleet.count("builder", "poudriere-bulk") == bulks + 1
    second_be = be_of(lab)
    for host in ("tester", "builder"):
        assert lab.booted_be(host) == second_be != first_be
        have = packages(lab, host)
        assert "security/sudo" not in have and have["py311-six"] == "1.17.0"
    assert "sysutils/tmux" in packages(lab, "tester")  # the one installed by hand stays
    order = [e.subject for e in lab.entries()[before:] if e.host in ("tester", "builder")]
    confirmed = next(i for i, s in enumerate(order) if s.startswith("tester: installed"))
    started = next(i for i, s in enumerate(order) if s.startswith("builder: installing"))
    assert confirmed < started  # production after the test stage passed
    bulks = fleet.count("builder", "poudriere-bulk")

    # 4. a port that fails to build: no host touched
    fleet.set_fault("builder", "port-build-fails", "www/nginx")
    lab.edit(LAB, r"^    - www/nginx\n", "    - www/nginx\n    - devel/pcre2\n", "pcre2 too")
    broken = lab.apply()
    fleet.clear_fault("builder", "port-build-fails")
    assert broken.returncode != 0
    assert "package set" in broken.stdout and "failed on builder" in broken.stdout
    for host in ("tester", "builder"):
        assert lab.booted_be(host) == second_be
    assert not any(
        e.subject.startswith(("tester: installing", "builder: installing"))
        for e in lab.entries()[-3:]
    )

    # 5. a package that fails to install on the test host: it keeps its BE, production untouched
    lab.edit(LAB, r"^    - devel/pcre2\n", "    - devel/pcre2\n    - security/sudo\n", "sudo again")
    fleet.set_fault("tester", "pkg-install-fails", "security/sudo")
    failing = lab.apply()
    fleet.clear_fault("tester", "pkg-install-fails")
    assert failing.returncode != 0
    assert "test stage failed, production untouched" in failing.stdout
    assert lab.booted_be("tester") == second_be and lab.booted_be("builder") == second_be
    listing = fleet.ssh("tester", "bectl list -H").stdout
    assert be_of(lab) not in listing  # the half-made BE is gone
    bulks = fleet.count("builder", "poudriere-bulk")

    # 6. back to the first commit: its repository is still there, nothing is built
    git(lab.repo, "checkout", "-q", first_commit, "--", ".")
    git(lab.repo, "commit", "-q", "-am", "back to the first packages", env=identity_env())
    back = lab.apply()
    assert back.returncode == 0, back.stdout[-4000:] + back.stderr[-2000:]
    assert fleet.count("builder", "poudriere-bulk") == bulks  # reused, not rebuilt
    assert be_of(lab) == first_be
    for host in ("tester", "builder"):
        assert lab.booted_be(host) == first_be
        assert packages(lab, host)["security/sudo"] == "1.9.15p5"
