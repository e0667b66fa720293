"""example-repo validates, its known_hosts matches the simulator's keys, validate's outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config.buildid import build_id, short
from reconciler.config.knownhosts import lookup
from reconciler.config.load import load_config
from reconciler.sim.hostkeys import known_hosts_text, public_key_line
from tests.config.conftest import EXAMPLE, Result


def test_example_repo_validates(validate: Callable[..., Result]) -> None:
    result = validate(EXAMPLE)
    assert result.code == 0, result.out
    config = load_config(EXAMPLE)
    builds = ", ".join(f"{bs.name} build {short(build_id(config, bs))}" for bs in config.buildsets)
    assert result.out == f"ok: 2 build sets, 6 hosts; {builds}\n"
    assert re.fullmatch(r"db build [0-9a-f]{12}, lab build [0-9a-f]{12}", builds)


def test_example_repo_shape() -> None:
    config = load_config(EXAMPLE)
    assert config.commit is None and config.origin == str(EXAMPLE)
    assert config.src_host == "builder"
    assert config.ports is not None and config.ports.tree == "/usr/ports"
    assert config.source.url == "https://git.freebsd.org/src.git"
    assert config.source.branch == "stable/14"
    assert re.fullmatch(r"[0-9a-f]{40}", config.source.revision)
    lab, db = config.buildset("lab"), config.buildset("db")
    assert [(h.name, h.address, h.kernconf, h.stage) for h in lab.hosts] == [
        ("builder", "127.0.0.11", "BUILDER", "production"),
        ("tester", "127.0.0.12", "GENERIC", "test"),
        ("web1", "127.0.0.13", "WEB", "production"),
        ("web2", "127.0.0.14", "WEB", "production"),
    ]
    assert lab.kernconfs == ("BUILDER", "GENERIC", "WEB")
    assert lab.rollout.install == "boot-environment" and lab.rollout.batch == (2,)
    assert [str(c) for c in lab.rollout.health_checks] == ["service sshd status"]
    assert lab.rollout.drift == "heal" and lab.rollout.keep_builds == 3
    assert db.rollout.install == "in-place" and db.build_host == "db1"
    assert [h.name for h in db.test_hosts] == ["db1"]
    assert {k.ident for k in config.kernels} == {"BUILDER", "WEB", "DB"}
    assert config.policy.status_branch == "reconciler/status"
    assert build_id(config, lab) != build_id(config, db)


def test_example_known_hosts_is_what_the_simulator_presents() -> None:
    config = load_config(EXAMPLE)
    assert (EXAMPLE / "known_hosts").read_text() == known_hosts_text(
        (h.name, h.address, h.port) for h in config.hosts
    )
    for host in config.hosts:
        assert lookup(config.known_hosts, host) == [public_key_line(host.name)]


def test_json_output_valid(validate: Callable[..., Result]) -> None:
    result = validate(EXAMPLE, "--format", "json")
    assert result.code == 0
    body = json.loads(result.out)
    config = load_config(EXAMPLE)
    assert body["valid"] is True and body["problems"] == []
    assert body["buildsets"] == [
        {"name": "db", "build_id": build_id(config, "db"), "hosts": ["db1", "db2"]},
        {
            "name": "lab",
            "build_id": build_id(config, "lab"),
            "hosts": ["builder", "tester", "web1", "web2"],
        },
    ]


def test_json_output_invalid(repo: Path, validate: Callable[..., Result]) -> None:
    (repo / "buildsets/db/make.conf").write_text("DESTDIR=/mnt\n")
    result = validate(repo, "--format", "json")
    assert result.code == 1
    assert json.loads(result.out) == {
        "valid": False,
        "problems": [
            {
                "path": "buildsets/db/make.conf",
                "line": 1,
                "column": 1,
                "message": "sets DESTDIR, which the reconciler owns",
                "hint": "remove it: the reconciler sets DESTDIR itself "
                "when installing into a boot environment",
            }
        ],
        "buildsets": [],
    }


def test_repo_defaults_to_current_directory(
    repo: Path, validate: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    result = validate()
    assert result.code == 0 and result.out.startswith("ok: 2 build sets, 6 hosts;")


def test_bad_format_is_usage_error(validate: Callable[..., Result]) -> None:
    result = validate(EXAMPLE, "--format", "yaml")
    assert result.code == 2


def test_subprocess_exit_codes_and_no_traceback(repo: Path) -> None:
    import subprocess
    import sys

    good = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (good.returncode, good.stderr) == (0, "")
    assert good.stdout.startswith("ok: 2 build sets, 6 hosts; db build ")
    (repo / "fleet.yaml").write_bytes(b"source: [\n")
    bad = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout.startswith("fleet.yaml:2:1: YAML syntax error")
    assert "Traceback" not in bad.stdout + bad.stderr
