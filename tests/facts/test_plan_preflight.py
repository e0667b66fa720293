"""Preflight as the planner decides it: facts in, problems and warnings out (pure)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema

from reconciler.config.model import Config
from reconciler.facts.host import HostFacts
from reconciler.facts.loader import Loaders, LoaderVersion, older
from reconciler.facts.preflight import BootPool, ObjSpace, RcKnobs, Space, SrcChecks
from reconciler.plan import format_markdown, format_text, make_plan
from reconciler.plan.model import Plan
from tests.facts.factories import all_tested, example_config, fleet_synced

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "plan.schema.json").read_text()
)
NEW = "9" * 40  # a revision every host still has to build and install
BUILD = "ab" * 32
ON = {"nfs_server_enable": "YES", "mountd_enable": "YES", "rpcbind_enable": "YES"}


def _with(facts: dict[str, HostFacts], name: str, **changes: object) -> None:
    facts[name] = dataclasses.replace(facts[name], **changes)  # type: ignore[arg-type]


def _healthy(config: Config, revision: str = NEW, pinned: int = 1402600) -> dict[str, HostFacts]:
    """A synced fleet (for ``config``) with every preflight fact read and in order."""
    facts = fleet_synced(config)
    for name in facts:
        _with(facts, name, rc_knobs=RcKnobs({**ON, "nfs_client_enable": "YES"}))
    _with(facts, "builder", src_checks=SrcChecks("/usr/local/bin/git", False, revision, pinned))
    for name in ("builder", "db1"):
        space = Space(f"zroot/{name}/obj", 200_000_000, 5_000_000, 195_000_000, "/usr/obj")
        _with(facts, name, obj_space=ObjSpace(space, BUILD, 4_800_000))
    for name in ("builder", "tester", "web1", "web2"):
        _with(facts, name, boot_pool=BootPool(True, "zroot/ROOT/default", 10**11, 2 * 10**9))
    return facts


def _plan(facts: dict[str, HostFacts], revision: str = NEW) -> Plan:
    old = example_config()
    return make_plan(example_config(revision=revision), facts, all_tested(old))


def test_a_fleet_in_order_has_no_findings_and_the_plan_validates() -> None:
    plan = _plan(_healthy(example_config()))
    assert plan.problems == ()
    assert plan.buildset("lab").problem_keys == ()
    assert plan.buildset("lab").warnings == ()  # db's: in place, no automatic rollback
    document = plan.to_json()
    jsonschema.validate(document, SCHEMA)
    assert all(bs["problems"] == [] for bs in document["buildsets"])


def test_no_git_on_the_src_host_blocks_every_set() -> None:
    facts = _healthy(example_config())
    _with(facts, "builder", src_checks=SrcChecks(None))
    plan = _plan(facts)
    for name in ("lab", "db"):
        (problem,) = plan.buildset(name).problems
        assert problem.startswith("builder: git is not installed")
        assert problem.endswith("(fix: pkg install git (or git-lite))")
        assert plan.buildset(name).problem_keys == ("builder:git",)
    text = format_text(plan)
    assert "  problem: builder: git is not installed" in text
    assert "apply will not touch build set(s) db, lab until fixed." in text
    assert "> **Problem (blocks this build set):** builder: git is not installed" in (
        format_markdown(plan)
    )
    jsonschema.validate(plan.to_json(), SCHEMA)


def test_a_shallow_src_warns_only_when_something_is_built() -> None:
    facts = _healthy(example_config())
    _with(facts, "builder", src_checks=SrcChecks("/usr/local/bin/git", True, NEW, 1402600))
    plan = _plan(facts)
    assert plan.problems == ()
    assert any("shallow clone" in w and "no n<count>" in w for w in plan.warnings)
    in_sync = _healthy(example_config(), revision=example_config().source.revision)
    _with(in_sync, "builder", src_checks=SrcChecks("/usr/local/bin/git", True))
    unchanged = _plan(in_sync, example_config().source.revision)
    assert not any("shallow" in w for w in unchanged.warnings)


def test_obj_space_for_one_more_build() -> None:
    facts = _healthy(example_config())
    space = Space("zroot/usr/obj", 9_000_000, 8_000_000, 1_000_000, "/usr/obj")
    _with(facts, "builder", obj_space=ObjSpace(space, BUILD, 4_800_000))
    (problem,) = _plan(facts).buildset("lab").problems
    assert problem.startswith("builder: zroot/usr/obj (/usr/obj) has 976.6M free, less than the ")
    assert "4.6G the newest build (abababababab) took" in problem
    assert "keep_builds: 3" in problem
    # Nothing to build: nothing to check.
    assert _plan(facts, example_config().source.revision).buildset("lab").problems == ()


def test_bectl_check_and_the_pool_of_a_new_boot_environment() -> None:
    facts = _healthy(example_config())
    _with(facts, "web2", boot_pool=BootPool(False))
    _with(facts, "tester", boot_pool=BootPool(True, "zroot/ROOT/default", 10**9, 2 * 10**9))
    lab = _plan(facts).buildset("lab")
    assert lab.problem_keys == ("tester:be-space", "web2:bectl")
    assert "the pool of zroot/ROOT/default has 953.7M free, less than the 1.9G" in lab.problems[0]
    assert lab.problems[1].startswith("web2: bectl check fails: the host cannot use boot")
    # In place, boot environments are not asked for.
    assert _plan(facts).buildset("db").problems == ()


def test_loader_on_the_esp_older_than_the_world_warns() -> None:
    facts = _healthy(example_config())
    world = LoaderVersion("/boot/loader.efi", "1.1", "Tue Dec  3 16:00:00 UTC 2024", "root@b")
    esp = LoaderVersion(
        "/boot/efi/efi/freebsd/loader.efi", "1.1", "Fri Apr 19 04:58:08 UTC 2019", "root@r"
    )
    _with(facts, "web1", loaders=Loaders(world, (esp,)))
    _with(facts, "web2", loaders=Loaders(world, (dataclasses.replace(esp, built=world.built),)))
    plan = _plan(facts)
    assert plan.problems == ()
    (warning,) = [w for w in plan.warnings if "EFI system partition" in w]
    assert warning.startswith("web1: the loader on the EFI system partition, ")
    assert "bectl activate -t" in warning and "cp /boot/loader.efi" in warning


def test_loader_order() -> None:
    def loader(revision: str | None, built: str | None) -> LoaderVersion:
        return LoaderVersion("/x", revision, built)

    new, old = "Tue Dec  3 16:00:00 UTC 2024", "Fri Apr 19 04:58:08 UTC 2019"
    assert older(loader("1.1", old), loader("1.1", new)) is True
    assert older(loader("1.1", new), loader("1.1", old)) is False
    assert older(loader("1.1", new), loader("1.1", new)) is False
    assert older(loader("1.1", new), loader("1.2", old)) is True  # the Revision comes first
    assert older(loader("1.1", None), loader("1.1", new)) is None  # reproducible: no date


def test_nfs_knobs_where_the_exports_and_fstab_lines_are_in_place() -> None:
    facts = _healthy(example_config())
    _with(facts, "builder", rc_knobs=RcKnobs({"nfs_server_enable": "NO", "mountd_enable": "YES"}))
    _with(facts, "db1", rc_knobs=RcKnobs({**ON, "mountd_enable": "no"}))
    _with(facts, "web1", rc_knobs=RcKnobs({"nfs_client_enable": "NO"}))
    plan = _plan(facts)
    assert plan.buildset("lab").problem_keys == ("builder:nfs-server",)
    assert plan.buildset("db").problem_keys == ("builder:nfs-server",)  # it serves /usr/src
    assert "sysrc nfs_server_enable=YES mountd_enable=YES rpcbind_enable=YES" in plan.problems[0]
    warnings = plan.warnings
    assert any(w.startswith("db1: mountd_enable not YES") for w in warnings)
    assert any(w.startswith("web1: nfs_client_enable is not YES") for w in warnings)
    # rc.subr's checkyesno: case does not matter.
    assert RcKnobs({"x": "yes"}).enabled("x") and not RcKnobs({"x": "NO"}).enabled("x")


def test_nfs_knobs_are_left_to_a_step_that_writes_the_exports() -> None:
    facts = _healthy(example_config())
    _with(facts, "builder", exports=(), rc_knobs=RcKnobs({}))  # exports() sets the knobs
    assert _plan(facts).problems == ()


def test_a_downgrade_is_refused_unless_allowed() -> None:
    facts = _healthy(example_config(), pinned=1402000)  # every host runs 1402504
    lab = _plan(facts).buildset("lab")
    hosts = ("builder", "tester", "web1", "web2")
    assert lab.problem_keys == tuple(f"{h}:downgrade" for h in hosts)
    assert "runs a userland of __FreeBSD_version 1402504 (uname -U), newer than the 1402000" in (
        lab.problems[0]
    )
    allowed = example_config(revision=NEW)
    lab_bs = allowed.buildset("lab")
    rollout = dataclasses.replace(lab_bs.rollout, allow_downgrade=True)
    allowed = dataclasses.replace(
        allowed,
        buildsets=tuple(
            dataclasses.replace(bs, rollout=rollout) if bs.name == "lab" else bs
            for bs in allowed.buildsets
        ),
    )
    plan = make_plan(allowed, facts, all_tested(example_config()))
    assert plan.buildset("lab").problems == ()
    assert plan.buildset("db").problem_keys == ("db1:downgrade", "db2:downgrade")
    allowed_warnings = plan.buildset("lab").warnings
    assert sum("allowed by rollout.allow_downgrade" in w for w in allowed_warnings) == 4


def test_a_pinned_revision_not_fetched_yet_is_said() -> None:
    facts = _healthy(example_config())
    _with(facts, "builder", src_checks=SrcChecks("/usr/local/bin/git", False, NEW, None))
    plan = _plan(facts)
    assert plan.problems == ()
    assert any("is not in /usr/src yet" in w for w in plan.warnings)
    # Facts recorded for another revision say nothing about this one.
    _with(facts, "builder", src_checks=SrcChecks("/usr/local/bin/git", False, "8" * 40, 1402000))
    assert _plan(facts).problems == ()


def test_recorded_facts_without_preflight_give_no_findings() -> None:
    facts = fleet_synced(example_config())  # none of the new facts: an older ledger's
    plan = _plan(facts)
    assert plan.problems == ()
    assert not any("preflight" in w for w in plan.warnings)
