"""The packages facts, read from a simulated fleet over real SSH; recorded facts still load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from reconciler.config import render
from reconciler.config.load import load_config
from reconciler.config.pkgsetid import package_set_id
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe, probes_for
from reconciler.settings import Settings
from reconciler.sim import portstree
from reconciler.sim.fleet import SimFleet
from tests.conftest import example_fleet_in, ssh_ok
from tests.packages_overlay import add_packages


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    for fleet in example_fleet_in(tmp_path_factory.mktemp("package-facts")):
        add_packages(fleet.repo)  # type: ignore[attr-defined]
        yield fleet


def test_probes_follow_the_roles(fleet: SimFleet) -> None:
    config = load_config(fleet.repo)  # type: ignore[attr-defined]
    names = {h.name: {p.name for p in probes_for(config, h)} for h in config.hosts}
    assert {"pkg-query", "pkgsets", "ports-origins"} <= names["builder"]  # src + lab's build host
    assert "pkg-query" in names["web1"] and not {"pkgsets", "ports-head"} & names["web1"]
    assert {"pkg-query", "pkgsets"} <= names["db1"] and "ports-head" not in names["db1"]
    bare = replace(config, buildsets=tuple(replace(b, packages=None) for b in config.buildsets))
    assert not {"pkg-query", "pkgsets"} & {p.name for p in probes_for(bare, bare.host("db1"))}
    assert "ports-head" in {p.name for p in probes_for(bare, bare.host("builder"))}  # still pinned


def test_packages_ports_and_package_sets_as_observed(fleet: SimFleet) -> None:
    config = load_config(fleet.repo)  # type: ignore[attr-defined]
    settings = Settings(ssh_key=str(fleet.client_key), parallel=8)
    pkgset = package_set_id(config, "lab")
    assert pkgset is not None
    # One host with pkg and the reconciler's records in place, as an install leaves them.
    # As the ports-mgmt/pkg package installs it: pkg(8) itself at /usr/local/sbin/pkg.
    conf = render.pkg_repo_conf(config, "lab")
    ssh_ok(
        fleet,
        "web1",
        "mkdir -p /usr/local/sbin /var/db/reconciler /usr/local/etc/pkg/repos && "
        "sed \"s/main('pkg'/main('pkg8'/\" /usr/sbin/pkg > /usr/local/sbin/pkg && "
        "chmod 755 /usr/local/sbin/pkg && "
        f"printf 'pkgset={pkgset}\\npackages=www/nginx devel/py-six@py311\\n' "
        "> /var/db/reconciler/packages && "
        f"cat > /usr/local/etc/pkg/repos/reconciler.conf <<'EOF'\n{conf}EOF",
    )
    facts = observe(config, settings, ["builder", "web1", "db1"])
    builder, web, db = facts["builder"], facts["web1"], facts["db1"]
    assert all(f.reachable for f in facts.values()), {n: f.error for n, f in facts.items()}
    # The src host's ports tree: on the oldest commit, the pinned one fetched, every origin there.
    assert builder.ports is not None and builder.ports.present and builder.ports.clean
    assert builder.ports.revision == portstree.COMMITS[0]
    assert builder.ports.pinned_fetched is True
    assert builder.ports.origins == {
        "databases/postgresql16-server": True,
        "devel/py-six": True,
        "security/sudo": True,
        "sysutils/tmux": True,
        "www/nginx": True,
    }
    # Build hosts: poudriere installed, nothing built yet.
    for host in (builder, db):
        assert host.package_sets is not None and host.package_sets.poudriere
        assert host.package_sets.sets == {} and host.package_sets.job_pid is None
        assert host.package_sets.state(pkgset) == "absent"
    # A fresh host has no pkg(8): the bootstrapper refuses without a tty, nothing is installed.
    assert builder.packages is not None and not builder.packages.pkg_present
    assert web.packages is not None and web.packages.pkg_present and web.packages.packages == ()
    assert web.packages.marker is not None and web.packages.marker.pkgset == pkgset
    assert web.packages.marker.packages == ("www/nginx", "devel/py-six@py311")
    assert web.packages.repo_conf == conf
    # The facts travel through the ledger as JSON and come back the same.
    for observed in facts.values():
        assert HostFacts.from_json(json.loads(observed.dumps())) == observed


def test_facts_recorded_before_packages_still_load(fleet: SimFleet) -> None:
    recorded = {
        "format": 1,
        "host": "web1",
        "reachable": True,
        "observed_at": "2024-11-19T10:30:00Z",
    }
    facts = HostFacts.from_json(recorded)
    assert (facts.packages, facts.ports, facts.package_sets) == (None, None, None)
