"""Plan with packages (issue 11): recorded facts in, steps and words out (pure, fast)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.config.pkgsetid import package_set_id
from reconciler.facts.bootenv import BootEnvironment, BootEnvironments
from reconciler.facts.host import HostFacts
from reconciler.facts.packages import InstalledPackage, InstalledPackages, PackageMarker
from reconciler.facts.pkgsets import PackageSet, PackageSets
from reconciler.facts.ports import PortsCheckout
from reconciler.plan import format_text, make_plan
from reconciler.progress import HostProgress, SetProgress
from reconciler.sim import portstree
from reconciler.vocabulary import Phase, RolloutStatus
from tests.facts.factories import fresh, synced
from tests.packages_overlay import packaged_example

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "plan.schema.json").read_text()
)
OLD_SET = "0" * 64  # the package set the hosts run (an earlier ports revision)


def config() -> Config:
    return load_config(packaged_example())


def pkgset(cfg: Config, name: str) -> str:
    found = package_set_id(cfg, name)
    assert found is not None
    return found


def running(cfg: Config, name: str, marker_set: str, extra: tuple[str, ...] = ()) -> HostFacts:
    """A host on the desired world, running package set ``marker_set``."""
    facts = synced(cfg, name)
    bs = cfg.buildset(cfg.host(name).buildset)
    assert bs.packages is not None
    ours = bs.packages.for_host(name) + extra
    installed = [
        InstalledPackage(
            o.partition("@")[0],
            o.split("/")[1].split("@")[0],
            "1.0",
            False,
            "reconciler",
            o.partition("@")[2] or None,
        )
        for o in ours
    ]
    installed.append(InstalledPackage("ports-mgmt/pkg", "pkg", "1.21.3", False, "reconciler"))
    facts = dataclasses.replace(
        facts,
        packages=InstalledPackages(True, tuple(installed), PackageMarker(marker_set, ours, "then")),
    )
    if bs.build_host == name:
        facts = dataclasses.replace(
            facts,
            package_sets=PackageSets(
                {s: PackageSet(s, "done", 0, True) for s in (pkgset(cfg, bs.name), OLD_SET)},
                poudriere=True,
            ),
        )
    if name == cfg.src_host:
        assert cfg.ports is not None
        facts = dataclasses.replace(
            facts, ports=PortsCheckout(True, cfg.ports.revision, (), True, {})
        )
    if facts.boot_envs is not None and facts.boot_envs.available:
        # booted: the BE of the package set it runs
        be = f"rc-{build_id(cfg, bs)[:12]}-{marker_set[:8]}"
        envs = BootEnvironments(True, (BootEnvironment(be, "NR", "/", "1G", "2024-11-19 10:00"),))
        facts = dataclasses.replace(facts, boot_envs=envs)
    return facts


def progress(cfg: Config, unit_of: dict[str, str]) -> dict[str, SetProgress]:
    """Each set's rollout converged on ``unit_of[set]`` (tested), every host done with it."""
    return {
        bs.name: SetProgress(
            generation="worktree",
            build=unit_of[bs.name],
            status=RolloutStatus.CONVERGED,
            tested=(unit_of[bs.name],),
            hosts={h.name: HostProgress(unit_of[bs.name], Phase.DONE) for h in bs.hosts},
        )
        for bs in cfg.buildsets
    }


def test_a_new_package_set_on_the_same_world_is_packages_only_and_tested_first() -> None:
    cfg = config()
    lab, db = pkgset(cfg, "lab"), pkgset(cfg, "db")
    # web1 runs an origin the reconciler installed that the config no longer lists
    facts = {h.name: running(cfg, h.name, OLD_SET) for h in cfg.hosts}
    facts["web1"] = running(cfg, "web1", OLD_SET, extra=("security/doas",))
    plan = make_plan(cfg, facts, progress(cfg, {"lab": OLD_SET, "db": OLD_SET}))
    stages = plan.buildset("lab")
    assert stages.pkgset == lab and not stages.builds  # world and package set are built
    (tester,) = stages.stage("test").hosts
    assert [s.kind for s in tester.steps] == ["install", "reboot", "confirm"]
    install = tester.steps[0]
    assert install.detail["mode"] == "packages"
    assert install.detail["be"] == f"rc-{build_id(cfg, 'lab')[:12]}-{lab[:8]}"
    assert install.reason.endswith(
        f"{install.detail['be']} cloned from the running one, packages upgraded in it: "
        "3 packages to upgrade"
    )
    web1 = stages.stage("production").host("web1")
    assert web1 is not None
    assert web1.steps[0].reason.endswith("3 packages to upgrade, 1 package to remove")
    assert web1.steps[0].detail["packages"]["remove"] == ["security/doas"]
    assert f"production waits until build {lab[:12]} passes the test stage" in stages.gates
    # in place: pkg on the live root, then confirm (no reboot: the world is the same)
    (db1,) = plan.buildset("db").stage("test").hosts
    assert [s.kind for s in db1.steps] == ["install-packages", "confirm"]
    assert db1.steps[0].detail["pkgset"] == db
    text = format_text(plan)
    assert "3 packages to upgrade, 1 package to remove" in text
    jsonschema.validate(plan.to_json(), SCHEMA)
    assert plan.to_json()["buildsets"][0]["packages"] in (lab, db)


def test_in_sync_with_its_package_set_and_a_fresh_fleet_builds_packages_after_the_world() -> None:
    cfg = config()
    lab, db = pkgset(cfg, "lab"), pkgset(cfg, "db")
    facts = {h.name: running(cfg, h.name, lab if h.buildset == "lab" else db) for h in cfg.hosts}
    plan = make_plan(cfg, facts, progress(cfg, {"lab": lab, "db": db}))
    assert plan.in_sync, [s for b in plan.buildsets for s in b.steps]
    fresh_facts = {h.name: fresh(cfg, h.name) for h in cfg.hosts}
    plan = make_plan(cfg, fresh_facts)
    # ports tree not observed (facts without it): no checkout planned from nothing
    assert [s.kind for s in plan.shared.steps] == [
        "checkout-source",
        "copy-kernel-configs",
        "export-nfs",
    ]
    (builder,) = plan.buildset("lab").stage("build").hosts
    assert [s.kind for s in builder.steps] == ["write-config", "build", "build-packages"]
    assert builder.steps[-1].detail["origins"] == [
        "devel/py-six@py311",
        "security/sudo",
        "sysutils/tmux",
        "www/nginx",
    ]
    tester = plan.buildset("lab").stage("test").hosts[0]
    assert tester.steps[0].reason.endswith(f"with package set {lab[:12]}: 3 packages to install")
    db2 = plan.buildset("db").stage("production").host("db2")
    assert db2 is not None
    assert [s.kind for s in db2.steps][-3:] == ["reboot", "install-packages", "confirm"]


def test_ports_tree_checkout_and_origins_missing_at_the_pin() -> None:
    cfg = config()
    lab = pkgset(cfg, "lab")
    facts = {h.name: running(cfg, h.name, lab) for h in cfg.hosts}
    src = facts[cfg.src_host]
    facts[cfg.src_host] = dataclasses.replace(
        src,
        ports=PortsCheckout(True, portstree.COMMITS[0], (), True, {"www/nginx": False}),
    )
    plan = make_plan(cfg, facts)
    (step,) = [s for s in plan.shared.steps if s.kind == "checkout-ports"]
    assert step.reason == f"/usr/ports at {portstree.COMMITS[0][:12]}, desired b89d065344ec"
    problems = plan.buildset("lab").problems
    assert problems == (
        f"{cfg.src_host}: www/nginx is not a port at ports revision b89d065344ec (no Makefile "
        "there) (fix: correct or remove it in buildsets/lab/buildset.yaml packages:)",
    )
