"""Preflight against the simulated fleet: each check as FreeBSD answers it, and the halt.

One fleet for the module (example-repo, with web2 a UFS host in the
boot-environment set lab, so lab has a preflight problem from the start).
Each test sets one condition up on a host the way an administrator's host
would have it, plans, and puts it back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.config import render
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.facts.connect import connect
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe
from reconciler.gitutil import git, identity_env
from reconciler.ledger import Ledger
from reconciler.plan import make_plan, wanted_exports
from reconciler.plan.model import Plan
from reconciler.settings import Settings
from reconciler.sim import loader, upstream
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.conftest import FAST, fresh_subnet, ssh_ok

ROOT = Path(__file__).resolve().parents[2]
PINNED_OSRELDATE = 1402500  # sys/sys/param.h of upstream.COMMITS[2], example-repo's pin


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    base = tmp_path_factory.mktemp("preflight-fleet")
    repo = copy_example_repo(base / "repo", subnet=fresh_subnet())
    fleet = SimFleet.up(base / "fleet", repo=repo, ufs=("web2",), **FAST)
    fleet.repo = repo  # type: ignore[attr-defined]
    try:
        yield fleet
    finally:
        fleet.down()


@pytest.fixture(scope="module")
def config(fleet: SimFleet) -> Config:
    return load_config(fleet.repo)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def settings(fleet: SimFleet) -> Settings:
    return Settings(ssh_key=str(fleet.client_key), parallel=8)


def _plan(config: Config, settings: Settings) -> tuple[Plan, dict[str, HostFacts]]:
    facts = observe(config, settings)
    assert all(f.reachable for f in facts.values()), {n: f.error for n, f in facts.items()}
    return make_plan(config, facts), facts


def _keys(plan: Plan, buildset: str) -> tuple[str, ...]:
    return plan.buildset(buildset).problem_keys


def test_a_fresh_fleet_reads_every_check_and_only_web2_lacks_boot_environments(
    config: Config, settings: Settings
) -> None:
    plan, facts = _plan(config, settings)
    src = facts["builder"].src_checks
    assert src is not None and src.git and src.shallow is False
    assert src.osreldate_at(config.source.revision) == PINNED_OSRELDATE
    obj = facts["builder"].obj_space
    assert obj is not None and obj.space is not None and obj.space.mountpoint == "/usr/obj"
    assert obj.space.filesystem == "zroot/usr/obj" and obj.newest_build_kb is None
    pool = facts["tester"].boot_pool
    assert pool is not None and pool.usable and pool.dataset == "zroot/ROOT/default"
    assert pool.avail_bytes and pool.refer_bytes and pool.avail_bytes > pool.refer_bytes
    web2 = facts["web2"].boot_pool
    assert web2 is not None and not web2.usable
    loaders = facts["tester"].loaders
    assert loaders is not None and loaders.world is not None and len(loaders.esp) == 2
    assert {esp.built for esp in loaders.esp} == {loaders.world.built}
    knobs = facts["web1"].rc_knobs
    assert knobs is not None and knobs.values["nfs_client_enable"] == "NO"
    assert facts["db1"].boot_pool is None  # in place: not asked
    # Exports and fstab lines are still to be written (their steps set the knobs).
    assert _keys(plan, "lab") == ("web2:bectl",)
    assert _keys(plan, "db") == ()
    assert not [w for w in plan.warnings if "(fix: " in w]
    assert HostFacts.from_json(json.loads(facts["builder"].dumps())) == facts["builder"]


def test_a_shallow_src_is_a_warning_about_verification(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    url = upstream.URL
    ssh_ok(fleet, "builder", f"git -C /usr/src fetch -q --depth 1 {url} {upstream.BRANCH}")
    try:
        plan, facts = _plan(config, settings)
        assert facts["builder"].src_checks and facts["builder"].src_checks.shallow is True
        assert _keys(plan, "lab") == ("web2:bectl",)
        assert any(w.startswith("builder: /usr/src is a shallow clone") for w in plan.warnings)
    finally:
        ssh_ok(fleet, "builder", f"git -C /usr/src fetch -q --unshallow {url} {upstream.BRANCH}")
    assert "false" in ssh_ok(fleet, "builder", "git -C /usr/src rev-parse --is-shallow-repository")


def test_a_newer_userland_is_a_downgrade_refused_unless_allowed(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    world = "/usr/share/freebsd-sim/world"
    ssh_ok(fleet, "tester", f"sed -i 's/^osreldate=.*/osreldate=1402502/' {world}")
    try:
        assert ssh_ok(fleet, "tester", "uname -U").strip() == "1402502"
        plan, facts = _plan(config, settings)
        assert _keys(plan, "lab") == ("web2:bectl", "tester:downgrade")
        assert "newer than the 1402500 of the pinned revision" in plan.buildset("lab").problems[1]
        lab = config.buildset("lab")
        allowed = dataclasses.replace(
            config,
            buildsets=tuple(
                dataclasses.replace(
                    bs, rollout=dataclasses.replace(lab.rollout, allow_downgrade=True)
                )
                if bs.name == "lab"
                else bs
                for bs in config.buildsets
            ),
        )
        relaxed = make_plan(allowed, facts)
        assert _keys(relaxed, "lab") == ("web2:bectl",)
        assert any(w.startswith("tester: runs a userland") for w in relaxed.warnings)
    finally:
        ssh_ok(fleet, "tester", f"sed -i 's/^osreldate=.*/osreldate=1401500/' {world}")


def test_nfs_knobs_where_exports_and_fstab_lines_are_in_place(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    plan, facts = _plan(config, settings)
    builder, web1 = config.host("builder"), config.host("web1")
    exports = wanted_exports(config, builder, facts["builder"])
    fstab = fleet.read_file("web1", "/etc/fstab") or ""
    with connect(builder, known_hosts=config.known_hosts, key_path=settings.ssh_key) as conn:
        conn.write_file("/etc/exports", exports)
    with connect(web1, known_hosts=config.known_hosts, key_path=settings.ssh_key) as conn:
        conn.write_file("/etc/fstab", fstab + render.fstab(config, web1))
    try:
        plan, _ = _plan(config, settings)
        # rc.conf has none of the knobs: /etc/defaults/rc.conf says NO.
        assert _keys(plan, "lab") == ("web2:bectl", "builder:nfs-server")
        assert _keys(plan, "db") == ("builder:nfs-server",)
        assert any(w.startswith("web1: nfs_client_enable is not YES") for w in plan.warnings)
        ssh_ok(fleet, "builder", "sysrc -q nfs_server_enable=YES")
        plan, _ = _plan(config, settings)
        assert _keys(plan, "db") == ()
        assert any(
            w.startswith("builder: rpcbind_enable and mountd_enable not YES") for w in plan.warnings
        )
    finally:
        ssh_ok(fleet, "builder", "rm -f /etc/exports; sysrc -q -x nfs_server_enable")
        with connect(web1, known_hosts=config.known_hosts, key_path=settings.ssh_key) as conn:
            conn.write_file("/etc/fstab", fstab)


def test_a_full_disk_leaves_no_room_for_a_build_or_a_boot_environment(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    old = "0" * 64  # a build kept from earlier: make exited 0, some objects
    ssh_ok(
        fleet,
        "builder",
        f"mkdir -p /usr/obj/{old}/.reconciler /usr/obj/{old}/usr/src/amd64.amd64 && "
        f"echo 0 > /usr/obj/{old}/.reconciler/exit && "
        f"head -c 262144 /dev/zero > /usr/obj/{old}/usr/src/amd64.amd64/libc.a",
    )
    fleet.set_fault("builder", "disk-full", "100")  # KiB left in the pool
    fleet.set_fault("tester", "disk-full")
    try:
        df = ssh_ok(fleet, "builder", "df -k /usr/obj").splitlines()
        assert df[1].split()[0] == "zroot/usr/obj" and df[1].split()[3] == "100"
        plan, facts = _plan(config, settings)
        obj = facts["builder"].obj_space
        assert obj is not None and obj.newest_build == old and (obj.newest_build_kb or 0) >= 256
        assert _keys(plan, "lab") == (
            "builder:obj-space",
            "builder:be-space",
            "tester:be-space",
            "web2:bectl",
        )
        assert "has 100K free, less than the" in plan.buildset("lab").problems[0]
    finally:
        fleet.clear_fault("builder", "disk-full")
        fleet.clear_fault("tester", "disk-full")
        ssh_ok(fleet, "builder", f"rm -rf /usr/obj/{old}")


def test_an_esp_loader_older_than_the_world_warns(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    path = fleet.host_path("tester", "/boot/efi/efi/freebsd/loader.efi")
    kept = path.read_bytes()
    # As bsdinstall left it in 2019: installworld has updated /boot/loader.efi since.
    path.write_bytes(loader.image(loader.date(1555649888), "root@releng3.nyi.freebsd.org"))
    try:
        plan, _ = _plan(config, settings)
        assert _keys(plan, "lab") == ("web2:bectl",)
        (warning,) = [w for w in plan.warnings if "EFI system partition" in w]
        assert warning.startswith(
            "tester: the loader on the EFI system partition, /boot/efi/efi/freebsd/loader.efi"
        )
        assert "built Fri Apr 19 04:58:08 UTC 2019" in warning
    finally:
        path.write_bytes(kept)


def test_a_src_host_without_git_blocks_every_set(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    ssh_ok(fleet, "builder", "mv /usr/bin/git /usr/bin/git.away")  # pkg delete git
    try:
        plan, _ = _plan(config, settings)
        assert _keys(plan, "db") == ("builder:git",)
        assert _keys(plan, "lab") == ("builder:git", "web2:bectl")
    finally:
        ssh_ok(fleet, "builder", "mv /usr/bin/git.away /usr/bin/git")


def _snapshot(fleet: SimFleet) -> dict[str, object]:
    files = ("/etc/make.conf", "/etc/src.conf", "/etc/fstab", "/etc/exports", "/etc/rc.conf")
    return {
        host: (
            {path: fleet.read_file(host, path) for path in files},
            json.loads((fleet.layout.host(host) / "counters.json").read_text()),
            sorted(fleet.state(host).get("bes", {})),
            fleet.ssh(host, "git -C /usr/src rev-parse HEAD").stdout,
        )
        for host in fleet.hosts
    }


def _apply(fleet: SimFleet, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["apply", str(fleet.repo), "--yes", "--ssh-key", str(fleet.client_key), *extra]  # type: ignore[attr-defined]
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *argv],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_apply_halts_the_set_before_anything_is_touched_and_records_it_once(
    fleet: SimFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = fleet.repo  # type: ignore[attr-defined]
    assert main(["plan", str(repo), "--ssh-key", str(fleet.client_key)]) == 0
    shown = capsys.readouterr().out
    assert "  problem: web2: bectl check fails" in shown
    assert "apply will not touch build set(s) lab until fixed." in shown
    before = _snapshot(fleet)
    first = _apply(fleet, "--buildset", "lab")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "halted before its first stage: preflight found 1 problem" in first.stdout + first.stderr
    entries = Ledger(repo).entries()
    (halt,) = entries
    assert halt.outcome == "halted" and halt.trailers.get("buildset") == "lab"
    assert halt.subject.startswith("lab: rollout of ")
    assert "halted before it started: preflight found 1 problem: web2: bectl check" in (
        halt.subject + halt.body
    )
    # The same problem again: no second record (a daemon would ask at every poll).
    again = _apply(fleet, "--buildset", "lab")
    assert again.returncode == 1
    assert [e.commit for e in Ledger(repo).entries()] == [halt.commit]
    assert _snapshot(fleet) == before


def _push_upstream(fleet: SimFleet, work: Path, osreldate: int) -> str:
    """A new commit on the simulated stable/14 whose param.h has ``osreldate``; its hash."""
    env = {**upstream.git_env(), **identity_env()}
    git(work.parent, "clone", "-q", "-b", upstream.BRANCH, str(fleet.layout.upstream), str(work))
    param = work / "sys/sys/param.h"
    text = param.read_text()
    param.write_text(text.replace("__FreeBSD_version 1402502", f"__FreeBSD_version {osreldate}"))
    git(work, "commit", "-q", "-am", "Back to an older __FreeBSD_version", env=env)
    git(work, "push", "-q", "origin", f"HEAD:{upstream.BRANCH}", env=env)
    return git(work, "rev-parse", "HEAD")


def test_a_downgrade_seen_only_after_the_fetch_halts_the_set_then(
    fleet: SimFleet, tmp_path: Path
) -> None:
    """The pinned revision is not in /usr/src until the shared source stage fetched it: the
    plan cannot tell yet (and says so); apply checks again before the set's first stage."""
    repo = fleet.repo  # type: ignore[attr-defined]
    new = _push_upstream(fleet, tmp_path / "upstream", 1401400)  # the hosts run 1401500
    fleet_yaml = repo / "fleet.yaml"
    fleet_yaml.write_text(
        fleet_yaml.read_text().replace(upstream.COMMITS[2], new), encoding="utf-8"
    )
    git(repo, "commit", "-q", "-am", "Pin the new commit", env=identity_env())
    config = load_config(repo, "HEAD")
    plan = make_plan(config, observe(config, Settings(ssh_key=str(fleet.client_key))))
    assert _keys(plan, "db") == ()
    assert any(f"revision {new[:12]} is not in /usr/src yet" in w for w in plan.warnings)
    db = {h: _snapshot(fleet)[h] for h in ("db1", "db2")}
    done = _apply(fleet, "--buildset", "db")
    assert done.returncode == 1, done.stdout + done.stderr
    assert ssh_ok(fleet, "builder", "git -C /usr/src rev-parse HEAD").strip() == new
    halts = [e for e in Ledger(repo).entries() if e.trailers.get("buildset") == "db"]
    assert [e.outcome for e in halts] == ["halted"]
    assert "db1: runs a userland of __FreeBSD_version 1401500" in halts[0].body
    assert {h: _snapshot(fleet)[h] for h in ("db1", "db2")} == db
