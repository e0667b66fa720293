"""Command-line manners, as a new user meets them: every command run as a process of its own.

No host is contacted here: each mistake is refused before any would be. The
JSON of every read command is checked against its schema in ``schema/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from reconciler.commands import SUMMARIES
from reconciler.gitutil import git, identity_env
from reconciler.ledger import Ledger, Record
from reconciler.sim.example import copy_example_repo
from tests.commands.terminal import ROOT, environment, run

SCHEMAS = ROOT / "schema"


def schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.fixture
def quiet_env(tmp_path: Path) -> dict[str, str]:
    """No settings file of this machine's, and an empty one of our own."""
    settings = tmp_path / "reconciler.toml"
    settings.write_text("")
    return environment({"RECONCILER_CONFIG": str(settings)})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example_repo(tmp_path / "repo")


def test_a_bare_reconciler_lists_the_commands() -> None:
    done = run()
    assert done.returncode == 0 and done.stderr == ""
    for name, summary in SUMMARIES.items():
        assert re.search(rf"^  {name} +{re.escape(summary)}$", done.stdout, re.M), name
    assert "reconciler COMMAND --help" in done.stdout


def test_a_typo_suggests_the_nearest_command_without_a_doubled_prefix() -> None:
    done = run("aply", "example-repo")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "reconciler: error: unknown command 'aply'; did you mean apply?\n(see reconciler --help)\n"
    )
    unknown = run("frobnicate")
    assert unknown.returncode == 2 and "commands: init, validate, plan" in unknown.stderr
    bad = run("plan", "--format", "yaml")
    assert bad.returncode == 2
    assert bad.stderr.startswith("reconciler plan: error: argument --format: invalid choice")
    assert "reconciler: error: reconciler" not in bad.stderr + done.stderr


def test_parallel_0_is_refused_by_every_command_that_connects(repo: Path) -> None:
    for command in ("plan", "status", "apply", "run"):
        done = run(command, *(() if command == "run" else (str(repo),)), "--parallel", "0")
        assert done.returncode == 2, (command, done.stderr)
        assert "argument --parallel: must be at least 1, not 0" in done.stderr, command


def test_run_takes_the_same_connection_flags_as_the_others() -> None:
    for command in ("plan", "status", "apply", "run"):
        text = run(command, "--help").stdout
        for flag in ("--config", "--ssh-key", "--ssh-user", "--parallel", "-v", "-q"):
            assert re.search(rf"(^|\s){flag}[\s,]", text), (command, flag)
    for command in ("plan", "status", "apply", "history"):
        text = run(command, "--help").stdout
        assert "--buildset" in text and "--host" in text, command


def test_verbose_and_quiet_work_after_the_command_too(repo: Path) -> None:
    ledger = Ledger(repo)
    for outcome in ("started", "success"):
        ledger.record(Record(f"web1: {outcome}", "worktree", "lab", "web1", "production", outcome))
    brief = run("history", str(repo))
    assert brief.stdout.splitlines()[0].endswith("success     web1: success")
    assert len(brief.stdout.splitlines()) == 1 and "step entry not shown" in brief.stderr
    after = run("history", str(repo), "-v")
    before = run("-v", "history", str(repo))
    assert after.stdout == before.stdout and "  host web1  " in after.stdout
    assert run("history", str(repo), "-q").stderr == ""  # no hint
    both = run("history", str(repo), "-v", "-q")
    assert both.returncode == 2 and "-v and -q exclude each other" in both.stderr


def test_errors_name_the_real_problem(
    repo: Path, tmp_path: Path, quiet_env: dict[str, str]
) -> None:
    key = tmp_path / "id_ed25519"
    public = tmp_path / "id_ed25519.pub"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n")
    public.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv7 admin@laptop\n")
    for command in (["plan"], ["status"], ["apply", "--yes"]):
        done = run(*command, str(repo), "--ssh-key", str(public), env=quiet_env)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr == (
            f"reconciler: error: SSH key {public} is a public key; give the private key ({key}): "
            "the public one goes into the hosts' authorized_keys\n"
        ), command
    none = run("plan", str(repo), env=quiet_env)
    assert none.returncode == 1 and none.stderr == (
        "reconciler: error: no SSH client key configured (setting ssh_key or --ssh-key)\n"
    )
    file = run("plan", str(repo / "fleet.yaml"), env=quiet_env)
    assert file.returncode == 1 and file.stderr == (
        f"reconciler: error: {repo / 'fleet.yaml'} is a file, not a config repo directory "
        f"(the directory that holds fleet.yaml: {repo})\n"
    )
    missing = run("status", str(tmp_path / "nope"), env=quiet_env)
    assert missing.returncode == 1 and missing.stderr == (
        f"reconciler: error: config repo {tmp_path / 'nope'}: no such file or directory\n"
    )
    other = run("apply", str(repo / "fleet.yaml"), "--yes", env=quiet_env)
    assert (
        other.returncode == 2 and "neither a config repo directory nor a plan saved" in other.stderr
    )
    for done in (file, missing, other, none):
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_every_read_command_has_json_that_its_schema_accepts(repo: Path, tmp_path: Path) -> None:
    valid = run("validate", str(repo), "--format", "json")
    assert valid.returncode == 0
    document = json.loads(valid.stdout)
    jsonschema.validate(document, schema("validate"))
    assert [b["name"] for b in document["buildsets"]] == ["db", "lab"]
    (repo / "fleet.yaml").write_text(
        (repo / "fleet.yaml").read_text().replace("src_host", "src_hots")
    )
    invalid = run("validate", str(repo), "--format", "json")
    assert invalid.returncode == 1
    document = json.loads(invalid.stdout)
    jsonschema.validate(document, schema("validate"))
    assert not document["valid"] and document["problems"][0]["path"] == "fleet.yaml"

    ledger = Ledger(repo, actor="admin@laptop", command="apply")
    ledger.record(
        Record("builder: build started", "a" * 40, "lab", "builder", "build", "started", "b" * 64,
               step="build")
    )  # fmt: skip
    ledger.record(
        Record("lab: build failed", "a" * 40, "lab", "builder", "build", "failure", "b" * 64,
               body="Last lines of /var/log/reconciler/build-x.log:\ncc: error", step="build")
    )  # fmt: skip
    history = run("history", str(repo), "--format", "json", "--steps")
    entries = json.loads(history.stdout)
    jsonschema.validate(entries, schema("history"))
    assert [e["outcome"] for e in entries] == ["failure", "started"]
    assert entries[0]["actor"] == "admin@laptop" and entries[0]["command"] == "apply"
    assert entries[0]["step"] == "build" and entries[0]["body"].endswith("cc: error")
    assert len(json.loads(run("history", str(repo), "--format", "json").stdout)) == 1


def test_the_example_readme_shows_the_build_ids_validate_prints() -> None:
    readme = (ROOT / "example-repo" / "README.md").read_text()
    shown = re.findall(r"`(ok: \d+ build sets, \d+ hosts; [^`]+)`", readme)
    done = run("validate", str(ROOT / "example-repo"))
    assert done.returncode == 0
    assert shown == [done.stdout.strip()]


def test_status_of_a_repo_with_no_valid_commit_says_why_in_both_formats(repo: Path) -> None:
    fleet_yaml = repo / "fleet.yaml"
    fleet_yaml.write_text(fleet_yaml.read_text().replace("src_host: builder", "src_host: nosuch"))
    git(repo, "commit", "-q", "--amend", "-am", "broken from the start", env=identity_env())
    text = run("status", str(repo), "--offline")
    assert text.returncode == 1
    assert text.stdout.startswith("HEAD (") and "is refused: config repo is invalid" in text.stdout
    assert "No earlier commit validates: nothing to compare the hosts with." in text.stdout
    document = json.loads(run("status", str(repo), "--offline", "--format", "json").stdout)
    jsonschema.validate(document, schema("status-command"))
    assert document["generation"] is None and document["hosts"] == []
    assert document["refused"]["problems"][0].startswith("fleet.yaml:")
