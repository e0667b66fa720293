"""The command line an administrator trusts, tried as one would against the simulated fleet.

One fleet for the module (the tests run in order and leave it in sync): the
config repo is a bare "origin", the administrator works in a clone of it, as
they would. Every command runs as a process of its own (tests/commands/terminal.py),
on a pipe or on a pseudo-terminal, and each test checks what it printed, its
exit status and what the hosts and the ledger then hold.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.gitutil import git, identity_env
from reconciler.ledger import Ledger
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.commands.terminal import ROOT, environment, on_terminal, run
from tests.conftest import FAST, fresh_subnet

SCHEMAS = ROOT / "schema"
STEP_LINE = re.compile(r"^\d\d:\d\d:\d\d    (\w+)/([\w-]+): ([a-z-]+): ")
ACTOR = f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass
class World:
    seed: Path  # what the fleet was made from
    first: str  # the config commit the fleet is first brought to
    origin: Path  # the config repo (bare), where the daemon would look
    clone: Path  # the administrator's clone
    fleet: SimFleet

    @property
    def key(self) -> list[str]:
        return ["--ssh-key", str(self.fleet.client_key)]

    def commit(self, path: str, pattern: str, replacement: str, message: str) -> str:
        file = self.clone / path
        text, count = re.subn(pattern, replacement, file.read_text(encoding="utf-8"), flags=re.M)
        assert count, f"{pattern!r} not in {path}"
        file.write_text(text, encoding="utf-8")
        git(self.clone, "commit", "-q", "-am", message, env=identity_env())
        git(self.clone, "push", "-q", "origin", "HEAD:main")
        return git(self.clone, "rev-parse", "HEAD")

    def ledger_tip(self) -> str | None:
        return Ledger(self.origin).head()

    def build(self, buildset: str) -> str:
        config = load_config(self.clone, "HEAD")
        return build_id(config, config.buildset(buildset))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("cli-fleet")
    seed = copy_example_repo(base / "seed", subnet=fresh_subnet())
    for name in ("lab", "db"):
        path = seed / "buildsets" / name / "buildset.yaml"
        path.write_text(re.sub(r"soak: \d+", "soak: 1", path.read_text()), encoding="utf-8")
    git(seed, "commit", "-q", "-am", "Short soaks for tests", env=identity_env())
    origin, clone = base / "origin.git", base / "clone"
    git(base, "clone", "-q", "--bare", str(seed), str(origin))
    git(base, "clone", "-q", str(origin), str(clone))
    fleet = SimFleet.up(base / "fleet", repo=seed, **FAST)
    try:
        yield World(seed, git(seed, "rev-parse", "HEAD"), origin, clone, fleet)
    finally:
        fleet.down()


def _drift(world: World, host: str, line: str) -> None:
    done = world.fleet.ssh(host, f"echo {line} >> /etc/make.conf")
    assert done.returncode == 0, done.stderr


def test_first_apply_from_a_clone_is_quiet_and_recorded_on_the_origin(world: World) -> None:
    done = run("apply", str(world.clone), "--yes", *world.key)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    planned = int(re.search(r"^Total: (\d+) steps;", out, re.M)[1])  # type: ignore[index]
    progress = out.split("\nTotal: ", 1)[1]
    steps = [m.groups() for m in map(STEP_LINE.match, progress.splitlines()) if m]
    # One line per host per step, as the plan listed them; no remote >>> line, no chatter.
    assert len(steps) == planned, progress
    assert ">>" not in progress and "World build" not in progress
    assert len(progress.splitlines()) < planned + 30
    assert "Summary:" in out and "hosts: 6 success" in out

    # One audit: the ledger is on the origin (the clone's copy is the same), with who and where.
    tip = world.ledger_tip()
    assert tip is not None and tip == Ledger(world.clone).head()
    entries = Ledger(world.origin).entries()
    assert {e.actor for e in entries} == {ACTOR} and {e.command for e in entries} == {"apply"}
    committer = git(world.origin, "log", "-1", "--format=%cn <%ce>", "reconciler/status")
    assert committer == "reconciler <reconciler@localhost>"
    for name in world.fleet.hosts:
        marker = world.fleet.read_file(name, "/var/db/reconciler/installed") or ""
        assert (
            f"build={world.build('lab' if name in ('builder', 'tester', 'web1', 'web2') else 'db')}"
            in marker
        )

    # history: one line per outcome; --steps adds the step starts; -v whole entries.
    brief = run("history", str(world.origin)).stdout.splitlines()
    full = run("history", str(world.origin), "--steps").stdout.splitlines()
    assert all(" started " not in line for line in brief) and len(full) == len(entries)
    assert len(brief) < len(full) and any("converged" in line for line in brief)
    verbose = run("history", str(world.origin), "-n", "1", "-v").stdout
    assert f"by {ACTOR}" in verbose and "command apply" in verbose

    again = run("apply", str(world.clone), "--yes", *world.key)
    assert again.returncode == 0 and again.stdout.strip() == "No changes. Every host is in sync."
    plan = run("plan", str(world.clone), *world.key)
    assert plan.stdout.rstrip().endswith("No changes. Every host is in sync.")
    assert world.ledger_tip() == tip  # nothing to do writes nothing


def test_a_clone_whose_origin_is_gone_is_refused_unless_told(world: World, tmp_path: Path) -> None:
    lost = tmp_path / "lost"
    git(tmp_path, "clone", "-q", str(world.origin), str(lost))
    git(lost, "remote", "set-url", "origin", str(tmp_path / "moved.git"))
    _drift(world, "tester", "LOST=1")
    before = world.ledger_tip()
    done = run("apply", str(lost), "--yes", *world.key)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"reconciler: error: cannot reach the config repo's origin ({tmp_path / 'moved.git'})"
    )
    assert "--local-ledger" in done.stderr and done.stdout == ""
    assert "LOST=1" in (world.fleet.read_file("tester", "/etc/make.conf") or "")  # untouched
    local = run("apply", str(lost), "--yes", "--local-ledger", *world.key)
    assert local.returncode == 0, local.stderr
    assert "--local-ledger: outcomes are recorded only in" in local.stderr
    assert "LOST=1" not in (world.fleet.read_file("tester", "/etc/make.conf") or "")
    assert world.ledger_tip() == before  # the origin's audit did not move
    # The clone's own ledger goes on from the origin's as last fetched, not from nothing.
    mine = Ledger(lost).entries()
    assert [e for e in mine if e.host == "tester" and e.command == "apply"]
    assert before in {e.commit for e in mine}


def test_plan_and_apply_look_at_head_and_say_when_the_disk_differs(world: World) -> None:
    make_conf = world.clone / "buildsets" / "lab" / "make.conf"
    original = make_conf.read_text()
    make_conf.write_text(original + "WITH_CCACHE_BUILD=yes\n")
    try:
        head = run("plan", str(world.clone), *world.key)
        assert head.returncode == 0
        assert "No changes. Every host is in sync." in head.stdout
        assert "reconciler: warning: the files on disk in" in head.stderr
        assert "buildsets/lab/make.conf" in head.stderr and "--worktree" in head.stderr
        disk = run("plan", str(world.clone), "--worktree", *world.key)
        assert "--worktree: planning the files on disk" in disk.stderr
        assert "config worktree" in disk.stdout
        # The diff of the file, not only a count of lines: the build host's own files
        # (written before the build), and the others', which go into their new boot environment.
        assert "builder: write-config: make.conf differs: 1 line" in disk.stdout
        added = re.findall(r"^ +\+WITH_CCACHE_BUILD=yes$", disk.stdout, re.M)
        assert len(added) == 4, disk.stdout  # builder, tester, web1, web2
        assert re.search(r"^ +--- /etc/make.conf \(on the host\)$", disk.stdout, re.M)
        markdown = run("plan", str(world.clone), "--worktree", "--format", "markdown", *world.key)
        for host, step in (("builder", "write-config"), ("web1", "install")):
            summary = f"<details><summary><code>{host}</code>: /etc/make.conf ({step})"
            assert summary in markdown.stdout, host
        assert "```diff\n--- /etc/make.conf (on the host)" in markdown.stdout
        document = json.loads(
            run("plan", str(world.clone), "--worktree", "--format", "json", *world.key).stdout
        )
        jsonschema.validate(document, json.loads((SCHEMAS / "plan.schema.json").read_text()))
        build = next(
            s for b in document["buildsets"] for st in b["stages"] for h in st["hosts"]
            for s in h["steps"] if s["kind"] == "build"
        )  # fmt: skip
        assert isinstance(build["detail"]["jobs"], int) and len(build["detail"]["build"]) == 64
        assert isinstance(build["detail"]["kernconfs"], list)
        # apply looks at HEAD too: it says so, and changes nothing the disk alone has.
        applied = run("apply", str(world.clone), "--yes", *world.key)
        assert applied.returncode == 0 and "differ from HEAD" in applied.stderr
        assert "CCACHE" not in (world.fleet.read_file("web1", "/etc/make.conf") or "")
    finally:
        make_conf.write_text(original)


def test_a_saved_plan_is_applied_only_while_it_holds(world: World, tmp_path: Path) -> None:
    saved = tmp_path / "web1.plan"
    _drift(world, "web1", "DRIFT=1")
    _drift(world, "web2", "DRIFT=1")
    made = run("plan", str(world.clone), "--host", "web1", "--out", str(saved), *world.key)
    assert made.returncode == 0 and f"reconciler apply {saved}" in made.stderr
    assert "web1: write-config: make.conf differs: 1 line" in made.stdout
    assert "web2" not in made.stdout and "build set db" not in made.stdout  # --host web1

    _drift(world, "web1", "DRIFT=2")  # the facts move after the review
    refused = run("apply", str(saved), *world.key)
    assert refused.returncode == 1
    assert "is not what applying would do now (the facts moved" in refused.stderr
    assert "-lab/production/web1: write-config: make.conf differs: 1 line" in refused.stderr
    assert "+lab/production/web1: write-config: make.conf differs: 2 lines" in refused.stderr
    assert "DRIFT=2" in (world.fleet.read_file("web1", "/etc/make.conf") or "")

    assert (
        run("plan", str(world.clone), "--host", "web1", "--out", str(saved), *world.key).returncode
        == 0
    )
    done = run("apply", str(saved), *world.key)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DRIFT" not in (world.fleet.read_file("web1", "/etc/make.conf") or "")
    assert "DRIFT=1" in (world.fleet.read_file("web2", "/etc/make.conf") or "")  # not selected

    status = run(
        "status",
        str(world.clone),
        "--host",
        "web2",
        "--host",
        "web1",
        "--format",
        "json",
        *world.key,
    )
    assert status.returncode == 0
    body = json.loads(status.stdout)
    jsonschema.validate(body, json.loads((SCHEMAS / "status-command.schema.json").read_text()))
    assert {r["host"]: r["in_sync"] for r in body["hosts"]} == {"web1": True, "web2": False}
    row = body["hosts"][0]
    assert row["desired"] == row["running"] == world.build("lab")[:12]  # build id with build id
    assert row["revision"] == row["desired_revision"][:12]  # revision with revision

    # -v shows what each step did (and every remote line), which the default leaves out.
    loud = run("apply", str(world.clone), "--yes", "--host", "web2", "-v", *world.key)
    assert loud.returncode == 0
    assert "lab/web2: wrote /etc/make.conf" in loud.stdout
    history = run(
        "history", str(world.origin), "--host", "web2", "--host", "web1", "-n", "2"
    ).stdout
    assert [line.split(None, 4)[4].split(":")[0] for line in history.splitlines()] == [
        "web2",
        "web1",
    ]


def test_a_failed_build_shows_why_live_on_a_terminal_without_colour(world: World) -> None:
    world.fleet.set_fault("builder", "build-fails")
    first = world.commit("buildsets/lab/src.conf", r"\Z", "WITHOUT_LPR=yes\n", "lab: no lpr")
    try:
        code, out = on_terminal(
            "apply", str(world.clone), "--yes", *world.key, env=environment({"NO_COLOR": "1"})
        )
        assert code == 1, out
        assert re.search(r"\x1b\[\d+A", out), "no line rewritten on the terminal"
        assert "\x1b[1m" not in out and "\x1b[33m" not in out  # NO_COLOR
        assert re.search(r"build: build [0-9a-f]{12} not in /usr/obj; stage \d+/25", out), out
        build = world.build("lab")
        assert f"builder failure: build {build[:12]} failed on builder: make exited" in out
        assert f"| Last lines of /var/log/reconciler/build-{build}.log" in out
        assert "| cc: error: unable to execute command: Killed" in out
        assert "installkernel" not in out and world.fleet.count("tester", "installkernel") == 1
    finally:
        world.fleet.clear_fault("builder", "build-fails")
        git(world.clone, "revert", "--no-edit", first, env=identity_env())
        git(world.clone, "push", "-q", "origin", "HEAD:main")


def test_status_of_a_broken_tip_shows_the_fleet_and_its_last_good_generation(world: World) -> None:
    applied = world.first  # what the fleet runs: the failed build left it there
    newer = world.commit("buildsets/lab/buildset.yaml", r"batch: 2", "batch: 1", "lab: batch 1")
    status = run("status", str(world.clone), *world.key)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[2:] if line.strip()}
    assert f" healed (older: {applied[:12]})" in rows["web1"]  # not this generation's
    broken = world.commit("fleet.yaml", r"^src_host: builder", "src_host: nosuch", "typo")
    status = run("status", str(world.clone), *world.key)
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    assert (
        lines[0]
        == f"HEAD ({broken[:12]}) is refused: config repo is invalid: 1 problem; it is not applied:"
    )
    assert lines[1].startswith("  fleet.yaml:")
    assert (
        f"The fleet runs the last good generation: {applied[:12]} "
        "(the generation the ledger records as rolled out)." in lines
    )
    table = lines[lines.index(next(x for x in lines if x.startswith("HOST"))) :]
    assert len([x for x in table[1:] if x.strip()]) == 6
    assert all(" yes " in x for x in table[1:] if x.strip())  # in sync with the last good one
    body = json.loads(run("status", str(world.clone), "--format", "json", *world.key).stdout)
    jsonschema.validate(body, json.loads((SCHEMAS / "status-command.schema.json").read_text()))
    assert body["refused"]["commit"] == broken and body["generation"] == applied
    git(world.clone, "revert", "--no-edit", broken, newer, env=identity_env())
    git(world.clone, "push", "-q", "origin", "HEAD:main")


def test_offline_plan_says_how_old_the_facts_are(world: World, tmp_path: Path) -> None:
    done = run("plan", str(world.clone), "--offline", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"^Facts: as the ledger recorded them, observed (\d+ minutes? ago|just now)",
        done.stdout,
        re.M,
    )
    fresh = copy_example_repo(tmp_path / "first-pr")
    first = run("plan", str(fresh), "--offline", "--format", "markdown")
    assert first.returncode == 0, first.stderr
    assert "Facts: nothing observed yet" in first.stdout
    assert "| test | `tester` | install |" in first.stdout
    assert "- `web1`: facts unknown (nothing observed yet)" in first.stdout


def test_a_terminal_gets_colour_and_live_lines(world: World) -> None:
    _drift(world, "web2", "DRIFT=3")
    code, out = on_terminal("apply", str(world.clone), "--yes", *world.key)
    assert code == 0, out
    assert "\x1b[1m" in out and re.search(r"\x1b\[\d+A", out)
    assert "DRIFT" not in (world.fleet.read_file("web2", "/etc/make.conf") or "")
    plain = run("apply", str(world.clone), "--yes", *world.key)
    assert "\x1b" not in plain.stdout + plain.stderr


def test_the_daemon_polls_quietly_once_the_fleet_is_in_sync(world: World, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--repo", str(world.origin),
             "--work-dir", str(tmp_path / "work"), *world.key, "--poll-interval", "1",
             "--log-format", "json", "-v"],
            stdout=subprocess.DEVNULL, stderr=handle, cwd=ROOT,
            env=environment({"RECONCILER_CONFIG": os.devnull}),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while '"generation.converged"' not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        converged_at = len(log.read_text().splitlines())
        time.sleep(6)  # a few polls: each a drift check of every host
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert proc.returncode == 0, lines
    after = [(line["level"], line["event"]) for line in lines[converged_at:]]
    idle = after[: after.index(("info", "daemon.signal"))]  # until SIGTERM: only polls
    assert [event for _, event in idle].count("drift.check") >= 2, after
    assert all(level == "debug" for level, _ in idle), [x for x in idle if x[0] != "debug"]
