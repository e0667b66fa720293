"""Plan: facts in, steps out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema

from reconciler.config.buildid import build_id
from reconciler.facts.boot import BootFile
from reconciler.facts.bootenv import BootEnvironment, BootEnvironments
from reconciler.facts.etcfiles import EtcFiles
from reconciler.facts.host import HostFacts
from reconciler.facts.installjobs import InstallJobs
from reconciler.facts.mounts import Mounts
from reconciler.facts.objtree import Build, ObjTree
from reconciler.facts.source import SourceTree
from reconciler.facts.versions import KernelSource
from reconciler.plan import format_markdown, format_text, make_plan
from reconciler.progress import HostProgress, SetProgress
from reconciler.vocabulary import Phase
from tests.facts.factories import all_tested, example_config, fleet_synced, fresh

BE_CHAIN = ["install", "reboot", "confirm"]
IN_PLACE_CHAIN = ["install-kernel", "reboot", "install-world", "reboot", "confirm"]

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "plan.schema.json").read_text()
)


def kinds(plan, bs: str, stage: str, host: str) -> list[str]:  # type: ignore[no-untyped-def]
    hp = next(h for h in plan.buildset(bs).stage(stage).hosts if h.host == host)
    return [s.kind for s in hp.steps]


def test_fleet_in_sync_has_no_steps() -> None:
    config = example_config()
    plan = make_plan(config, fleet_synced(config), all_tested(config))
    assert plan.in_sync, [s for b in plan.buildsets for s in b.steps]
    assert plan.counts() == {"steps": 0, "builds": 0, "installs": 0, "reboots": 0, "unreachable": 0}
    assert plan.warnings == ()
    jsonschema.validate(plan.to_json(), SCHEMA)


def test_fresh_fleet_plans_the_full_pipeline() -> None:
    config = example_config()
    facts = {h.name: fresh(config, h.name) for h in config.hosts}
    plan = make_plan(config, facts)
    assert [s.kind for s in plan.shared.steps] == [
        "checkout-source",
        "copy-kernel-configs",
        "export-nfs",
    ]
    assert kinds(plan, "lab", "source", "web1") == ["mount-nfs"]
    assert kinds(plan, "lab", "build", "builder") == ["write-config", "build"]
    # boot-environment hosts: make.conf/src.conf go into the new BE with the install
    assert kinds(plan, "lab", "test", "tester") == BE_CHAIN
    assert kinds(plan, "lab", "production", "web1") == BE_CHAIN
    assert kinds(plan, "lab", "production", "builder") == BE_CHAIN  # config written in build
    assert kinds(plan, "db", "source", "db1") == ["export-nfs", "mount-nfs"]
    assert kinds(plan, "db", "production", "db2") == ["write-config", *IN_PLACE_CHAIN]
    lab = plan.buildset("lab")
    assert lab.builds == 1 and lab.reboots == 4
    # in place: two reboots per host (after the kernel, after the world)
    assert plan.counts()["builds"] == 2 and plan.counts()["reboots"] == 8
    step = lab.stage("production").hosts[0].steps[-3]
    assert step.reason == (
        f"running kernel built from 1a2b3c4d5e6f, desired {config.source.short}; "
        f"install into rc-{lab.build[:12]}, smoke-test it in a jail "
        "(sshd -t, freebsd-version -u, sh -n /etc/rc.conf and 1 smoke_check of the set)"
    )
    # confirm or revert, in the plan: the reboot arms the watchdog, the confirm disarms it
    be = f"rc-{lab.build[:12]}"
    reboot, confirm = lab.stage("production").hosts[0].steps[-2:]
    assert reboot.reason == (
        f"boot {be} once (bectl activate -t), then reboot; a watchdog in {be} brings back "
        "default unless confirmed within 120s"
    ), reboot.reason
    assert reboot.detail["revert_to"] == "default" and reboot.detail["confirm_timeout"] == 120
    assert "confirm over a new SSH connection" in confirm.reason
    assert confirm.reason.endswith(f"make {be} permanent and remove its watchdog")
    db2 = plan.buildset("db").stage("production").hosts[0].steps[-1]
    assert "cannot undo an in-place world" in db2.reason, db2.reason
    build = lab.stage("build").hosts[0].steps[-1]
    assert build.reason == f"build {build_id(config, 'lab')[:12]} not in /usr/obj"
    jsonschema.validate(plan.to_json(), SCHEMA)


def test_hand_edited_make_conf_only_that_host_writes_config() -> None:
    config = example_config()
    facts = fleet_synced(config)
    web1 = facts["web1"]
    assert web1.etc is not None and web1.etc.make_conf is not None
    edited = (
        web1.etc.make_conf.replace("CPUTYPE?=x86-64-v2", "CPUTYPE?=native") + "DEBUG_FLAGS=-g\n"
    )
    facts["web1"] = dataclasses.replace(web1, etc=EtcFiles(edited, web1.etc.src_conf))
    plan = make_plan(config, facts, all_tested(config))
    steps = [
        (h.host, s) for b in plan.buildsets for st in b.stages for h in st.hosts for s in h.steps
    ]
    assert [(host, s.kind) for host, s in steps] == [("web1", "write-config")]
    assert steps[0][1].reason == "make.conf differs: 3 lines"
    assert plan.counts()["reboots"] == 0


def test_header_only_difference_is_in_sync() -> None:
    config = example_config()
    facts = fleet_synced(config)
    web1 = facts["web1"]
    assert web1.etc is not None and web1.etc.make_conf is not None
    # A header as an older version wrote it (it named the commit): only the header differs.
    first, rest = web1.etc.make_conf.split("\n", 1)
    other = first.replace("; edits", " @ 0123456789ab; edits") + "\n" + rest
    assert other != web1.etc.make_conf
    facts["web1"] = dataclasses.replace(web1, etc=EtcFiles(other, web1.etc.src_conf))
    assert make_plan(config, facts, all_tested(config)).in_sync


def test_unreachable_host_is_a_step_not_a_crash() -> None:
    config = example_config()
    facts = fleet_synced(config)
    facts["web2"] = HostFacts.unreachable("web2", "web2: cannot connect to 127.0.0.14:22: refused")
    del facts["db2"]
    plan = make_plan(config, facts, all_tested(config))
    assert kinds(plan, "lab", "production", "web2") == ["unreachable"]
    assert kinds(plan, "lab", "source", "web2") == ["unreachable"]
    assert kinds(plan, "db", "production", "db2") == ["unreachable"]
    assert kinds(plan, "lab", "production", "web1") == []
    assert plan.counts()["unreachable"] == 2


def test_new_revision_rebuilds_and_reinstalls_everyone() -> None:
    old = example_config()
    facts = fleet_synced(old)
    new = example_config(revision="9" * 40)
    plan = make_plan(new, facts, all_tested(old))
    assert [s.kind for s in plan.shared.steps] == ["checkout-source"]
    assert kinds(plan, "lab", "build", "builder") == ["build"]
    for hp in plan.buildset("lab").stage("production").hosts:
        assert [s.kind for s in hp.steps] == BE_CHAIN, hp.host
    assert plan.buildset("lab").build != build_id(old, "lab")


def test_running_build_is_awaited_and_failed_build_warned() -> None:
    config = example_config(revision="9" * 40)  # every host needs the new build
    facts = fleet_synced(example_config())
    build = build_id(config, "lab")
    builder = facts["builder"]
    facts["builder"] = dataclasses.replace(
        builder, objtree=ObjTree({build: Build(build, "running")})
    )
    assert kinds(make_plan(config, facts), "lab", "build", "builder") == ["await-build"]
    facts["builder"] = dataclasses.replace(
        builder, objtree=ObjTree({build: Build(build, "failed", 2)})
    )
    plan = make_plan(config, facts)
    assert kinds(plan, "lab", "build", "builder") == ["build"]
    assert any("failed earlier (exit 2)" in w for w in plan.warnings)


def test_installed_in_be_not_booted_needs_only_a_reboot() -> None:
    config = example_config()
    facts = fleet_synced(config)
    build = build_id(config, "lab")
    web1 = facts["web1"]
    envs = BootEnvironments(
        True,
        (
            BootEnvironment("default", "NR", "/", "1G", "2024-01-01 00:00"),
            BootEnvironment(f"rc-{build[:12]}", "T", None, "1G", "2024-11-19 10:00"),
        ),
    )
    old_kernel = dataclasses.replace(
        web1.versions, source=KernelSource("1a2b3c4d5e6f", 1, "stable/14")
    )  # type: ignore[arg-type]
    facts["web1"] = dataclasses.replace(
        web1,
        boot_envs=envs,
        versions=old_kernel,
        marker=None,
        install_jobs=InstallJobs({build: 0}),  # the install job into the BE ended well
    )
    plan = make_plan(config, facts, all_tested(config))
    assert kinds(plan, "lab", "production", "web1") == ["reboot", "confirm"]
    assert plan.buildset("lab").reboots == 1 and plan.buildset("lab").installs == 0
    # The same BE without a finished install job of ours is installed again.
    facts["web1"] = dataclasses.replace(facts["web1"], install_jobs=InstallJobs())
    assert kinds(make_plan(config, facts, all_tested(config)), "lab", "production", "web1") == (
        BE_CHAIN
    )


def test_in_place_kernel_old_bootfile_means_reboot() -> None:
    new = example_config(revision="9" * 40)
    facts = fleet_synced(example_config())
    build = build_id(new, "db")
    # installkernel ran (its job ended 0) and moved the running kernel to kernel.old
    facts["db2"] = dataclasses.replace(
        facts["db2"],
        boot=BootFile("/boot/kernel.old/kernel"),
        install_jobs=InstallJobs({f"{build}-kernel": 0}),
    )
    progress = {
        "db": SetProgress(tested=(build,), hosts={"db2": HostProgress(build, Phase.INSTALLING)})
    }
    plan = make_plan(new, facts, progress)
    assert kinds(plan, "db", "production", "db2") == [
        "reboot",
        "install-world",
        "reboot",
        "confirm",
    ]
    # recorded as rebooting, yet still on kernel.old: the reboot never happened
    progress["db"] = SetProgress(
        tested=(build,), hosts={"db2": HostProgress(build, Phase.REBOOTING_KERNEL)}
    )
    assert kinds(make_plan(new, facts, progress), "db", "production", "db2") == [
        "reboot",
        "install-world",
        "reboot",
        "confirm",
    ]


def test_wrong_kernel_ident_installs() -> None:
    config = example_config()
    facts = fleet_synced(config)
    web2 = facts["web2"]
    facts["web2"] = dataclasses.replace(
        web2, versions=dataclasses.replace(web2.versions, ident="GENERIC")
    )  # type: ignore[arg-type]
    plan = make_plan(config, facts, all_tested(config))
    step = next(
        h for h in plan.buildset("lab").stage("production").hosts if h.host == "web2"
    ).steps[0]
    be = f"rc-{build_id(config, 'lab')[:12]}"
    assert (step.kind, step.reason) == (
        "install",
        f"running kernel GENERIC, desired WEB; install into {be}, smoke-test it in a jail "
        "(sshd -t, freebsd-version -u, sh -n /etc/rc.conf and 1 smoke_check of the set)",
    )


def test_warnings_obj_not_own_fs_dirty_src_missing_mount() -> None:
    config = example_config()
    facts = fleet_synced(config)
    builder = facts["builder"]
    assert builder.mounts is not None
    no_obj = tuple(m for m in builder.mounts.mounted if m.mountpoint != "/usr/obj")
    facts["builder"] = dataclasses.replace(
        builder,
        mounts=Mounts(no_obj, builder.mounts.fstab),
        source=SourceTree(True, config.source.revision, (" M sys/conf/newvers.sh",)),
    )
    web1 = facts["web1"]
    assert web1.mounts is not None
    facts["web1"] = dataclasses.replace(
        web1,
        mounts=Mounts(
            tuple(m for m in web1.mounts.mounted if m.mountpoint != "/usr/obj"), web1.mounts.fstab
        ),
    )
    plan = make_plan(config, facts)
    # A problem now (preflight): a BE switch on the build host would lose the builds.
    assert any("/usr/obj is not its own file system" in p for p in plan.buildset("lab").problems)
    assert any("/usr/src has 1 local change(s) (sys/conf/newvers.sh)" in w for w in plan.warnings)
    # /usr/obj now shares the root file system with /usr/src: mountd wants one exports
    # line per client and file system, so the exports must be rewritten (exports(5)).
    assert [s.kind for s in plan.shared.steps] == ["export-nfs"]
    assert kinds(plan, "lab", "source", "web1") == ["mount-nfs"]
    web1_step = next(
        h for h in plan.buildset("lab").stage("source").hosts if h.host == "web1"
    ).steps[0]
    assert web1_step.reason == "/usr/obj not mounted"


def test_host_facts_json_round_trip() -> None:
    config = example_config()
    for name, facts in fleet_synced(config).items():
        data = json.loads(json.dumps(facts.to_json()))
        assert HostFacts.from_json(data) == facts, name
    fresh_builder = fresh(config, "builder")
    assert HostFacts.from_json(json.loads(fresh_builder.dumps())) == fresh_builder
    down = HostFacts.unreachable("web2", "refused")
    assert HostFacts.from_json(down.to_json()) == down


def test_copied_kernel_configs_do_not_make_src_dirty() -> None:
    config = example_config()
    facts = fleet_synced(config)
    untracked = ("?? sys/amd64/conf/WEB", "?? sys/amd64/conf/BUILDER", "?? sys/amd64/conf/DB")
    facts["builder"] = dataclasses.replace(
        facts["builder"], source=SourceTree(True, config.source.revision, untracked)
    )
    plan = make_plan(config, facts, all_tested(config))
    assert plan.in_sync and plan.warnings == ()


def test_text_and_markdown_name_every_step_and_the_counts() -> None:
    config = example_config()
    facts = {h.name: fresh(config, h.name) for h in config.hosts}
    facts["web2"] = HostFacts.unreachable("web2", "web2: cannot connect to 127.0.0.14:22: refused")
    plan = make_plan(config, facts)
    text = format_text(plan)
    assert "build set lab: build " in text and "1 build, 3 reboots, 1 unreachable host" in text
    assert "    web2: unreachable: web2: cannot connect" in text
    # db installs in place: two reboots per host; the src host is planned once
    assert text.endswith("Total: 34 steps; 2 builds, 7 reboots, 1 unreachable host.")
    markdown = format_markdown(plan)
    assert "| production | `web1` | install | running kernel built from 1a2b3c4d5e6f" in markdown
    assert "**2 builds, 7 reboots, 1 unreachable host**" in markdown
    synced = format_text(make_plan(config, fleet_synced(config), all_tested(config)))
    assert "web1: in sync" in synced and synced.endswith("No changes. Every host is in sync.")


def test_one_shot_boot_never_made_permanent_needs_activation() -> None:
    config = example_config()
    facts = fleet_synced(config)
    build = build_id(config, "lab")
    envs = BootEnvironments(
        True,
        (
            BootEnvironment("default", "R", None, "1G", "2024-01-01 00:00"),
            BootEnvironment(f"rc-{build[:12]}", "N", "/", "1G", "2024-11-19 10:00"),
        ),
    )
    facts["web1"] = dataclasses.replace(facts["web1"], boot_envs=envs)
    plan = make_plan(config, facts, all_tested(config))
    step = next(h for h in plan.buildset("lab").stage("production").hosts if h.host == "web1").steps
    assert [(s.kind, s.detail["be"]) for s in step] == [("confirm", f"rc-{build[:12]}")]
    assert plan.counts()["reboots"] == 0
    jsonschema.validate(plan.to_json(), SCHEMA)


def test_unreachable_src_host_counts_once() -> None:
    config = example_config()
    facts = fleet_synced(config)
    facts["builder"] = HostFacts.unreachable("builder", "builder: cannot connect")
    plan = make_plan(config, facts, all_tested(config))
    # The src host is planned once, for every build set.
    assert [s.kind for s in plan.shared.steps] == ["unreachable"]
    assert kinds(plan, "lab", "production", "builder") == ["unreachable"]
    assert plan.counts()["unreachable"] == 1
    assert kinds(plan, "db", "production", "db2") == []


def test_observe_refuses_unknown_host_names_before_any_ssh() -> None:
    import pytest

    from reconciler.errors import UsageError
    from reconciler.facts.observe import observe
    from reconciler.settings import Settings

    with pytest.raises(UsageError, match="nosuch"):
        observe(example_config(), Settings(ssh_key="/nonexistent"), hosts=["web1", "nosuch"])
