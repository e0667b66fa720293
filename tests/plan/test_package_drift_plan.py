"""Drift among the managed packages, and a dropped packages: block, in the plan (pure, fast).

Recorded outputs in pkg's own formats (``pkg query``/``pkg rquery`` with tabs)
go through the facts parser; the plan must see a package removed or changed
by hand among the listed ones, and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema

from reconciler.config.load import load_config
from reconciler.facts.packages import parse_offered, parse_query
from reconciler.plan import format_text, make_plan
from reconciler.plan.packages import package_drift
from tests.facts.test_plan_packages import config, pkgset, progress, running
from tests.packages_overlay import packaged_example

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "plan.schema.json").read_text()
)

# pkg query -a '%o\t%n\t%v\t%a\t%R' and pkg query -a '%n\t%At\t%Av' on a lab host
QUERY = (
    "www/nginx\tnginx\t1.26.1,3\t0\treconciler\n"
    "security/sudo\tsudo\t1.9.15p5\t0\treconciler\n"
    "devel/py-six\tpy311-six\t1.16.0\t0\treconciler\n"
    "ports-mgmt/pkg\tpkg\t1.21.3\t0\treconciler\n"
    "editors/vim\tvim\t9.1.0\t0\tFreeBSD\n"
)
FLAVORS = "py311-six\tflavor\tpy311\npy311-six\trepository\treconciler\n"
# pkg rquery -U -r reconciler -a '%o\t%n\t%v': what the host's repository offers
OFFERED = (
    "www/nginx\tnginx\t1.26.2,3\n"
    "security/sudo\tsudo\t1.9.15p5\n"
    "devel/py-six\tpy311-six\t1.16.0\n"
    "sysutils/tmux\ttmux\t3.4\n"
)


def test_changed_and_missing_listed_packages_are_drift_unlisted_ones_are_not() -> None:
    installed = parse_query(QUERY, FLAVORS)
    offered = parse_offered(OFFERED)
    cfg = config()
    lab = pkgset(cfg, "lab")
    facts = {
        h.name: running(cfg, h.name, lab if h.buildset == "lab" else pkgset(cfg, "db"))
        for h in cfg.hosts
    }
    web1 = facts["web1"]
    assert web1.packages is not None and web1.packages.marker is not None
    # web1 as pkg shows it: nginx at an older version than the repository's, no tmux
    # (not listed for web1), vim from elsewhere (the administrator's)
    facts["web1"] = dataclasses.replace(
        web1,
        packages=dataclasses.replace(web1.packages, packages=installed, offered=offered),
    )
    drift = package_drift(
        facts["web1"].packages, ("www/nginx", "security/sudo", "devel/py-six@py311")
    )
    assert drift.changed == (("www/nginx", "1.26.1,3", "1.26.2,3"),) and drift.missing == ()
    units = {"lab": lab, "db": pkgset(cfg, "db")}
    plan = make_plan(cfg, facts, progress(cfg, units))
    host = plan.buildset("lab").stage("production").host("web1")
    assert host is not None
    assert [s.kind for s in host.steps] == ["heal-packages"]
    assert host.steps[0].reason.startswith(
        "1 package drifted: www/nginx at 1.26.1,3, the repository has 1.26.2,3"
    )
    assert host.steps[0].detail["reinstall"] == ["www/nginx"]
    jsonschema.validate(plan.to_json(), SCHEMA)
    # the same under drift: report: one record, and once recorded a note only
    reporting = load_config(packaged_example())
    lab_set = reporting.buildset("lab")
    reporting = dataclasses.replace(
        reporting,
        buildsets=tuple(
            dataclasses.replace(bs, rollout=dataclasses.replace(bs.rollout, drift="report"))
            if bs is lab_set
            else bs
            for bs in reporting.buildsets
        ),
    )
    plan = make_plan(reporting, facts, progress(reporting, units))
    host = plan.buildset("lab").stage("production").host("web1")
    assert host is not None and [s.kind for s in host.steps] == ["report-drift"]
    assert "1 package drifted: www/nginx at 1.26.1,3" in format_text(plan)
    recorded = progress(reporting, units)
    entry = recorded["lab"].hosts["web1"]
    recorded["lab"] = dataclasses.replace(
        recorded["lab"],
        hosts={
            **recorded["lab"].hosts,
            "web1": dataclasses.replace(entry, drift_reported="worktree"),
        },
    )
    plan = make_plan(reporting, facts, recorded)
    host = plan.buildset("lab").stage("production").host("web1")
    assert host is not None and host.steps == ()
    assert "recorded, left as is" in host.notes[0]


def test_a_missing_catalogue_sees_only_removed_packages() -> None:
    cfg = config()
    facts = running(cfg, "web1", pkgset(cfg, "lab"))
    assert facts.packages is not None
    without_nginx = tuple(p for p in facts.packages.packages if p.origin != "www/nginx")
    packages = dataclasses.replace(facts.packages, packages=without_nginx, offered=())
    drift = package_drift(packages, ("www/nginx", "security/sudo"))
    assert drift.missing == ("www/nginx",) and drift.changed == ()
    assert drift.words() == "1 package drifted: www/nginx missing"


def test_a_dropped_packages_block_removes_what_the_record_names() -> None:
    cfg = config()
    units = {"lab": pkgset(cfg, "lab"), "db": pkgset(cfg, "db")}
    facts = {h.name: running(cfg, h.name, units[h.buildset]) for h in cfg.hosts}
    dropped = dataclasses.replace(
        cfg,
        buildsets=tuple(
            dataclasses.replace(bs, packages=None) if bs.name == "lab" else bs
            for bs in cfg.buildsets
        ),
    )
    # the same world, confirmed with the package set: only the removal, no second test
    plan = make_plan(dropped, facts, progress(cfg, units))
    tester = plan.buildset("lab").stage("test").hosts[0]
    assert [s.kind for s in tester.steps] == ["remove-packages"]
    assert tester.steps[0].detail["remove"] == ["www/nginx", "security/sudo", "devel/py-six@py311"]
    assert tester.steps[0].reason.startswith(
        "buildset.yaml lists no packages: 3 packages to remove"
    )
    jsonschema.validate(plan.to_json(), SCHEMA)
