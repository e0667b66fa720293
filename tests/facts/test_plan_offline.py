"""`reconciler plan --offline`: facts from the ledger of a real git repository, no SSH."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli import main
from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.facts.host import HostFacts
from reconciler.ledger import Ledger, Record
from reconciler.sim.example import copy_example_repo
from tests.facts.factories import fleet_synced

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "plan.schema.json").read_text()
)


def test_offline_without_ledger_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = copy_example_repo(tmp_path / "repo")
    assert main(["plan", str(repo), "--offline"]) == 1
    err = capsys.readouterr().err
    assert "no ledger yet" in err and "reconciler/status" in err and "Traceback" not in err


def test_offline_plans_from_recorded_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_example_repo(tmp_path / "repo")
    config = load_config(repo)
    facts = fleet_synced(config)
    web1 = facts["web1"]
    assert web1.etc is not None and web1.etc.make_conf is not None
    import dataclasses

    from reconciler.facts.etcfiles import EtcFiles

    facts["web1"] = dataclasses.replace(
        web1, etc=EtcFiles(web1.etc.make_conf + "X=1\n", web1.etc.src_conf)
    )
    files = {}
    for host in config.hosts:
        if host.name == "db2":
            continue  # never recorded: planned as unknown, not a crash
        record = {
            "host": host.name,
            "buildset": host.buildset,
            "generation": "worktree",
            "build": None,
            "outcome": "success",
            "stage": host.stage,
            "at": "2024-11-19T11:00:00Z",
            "facts": facts[host.name].to_json(),
        }
        files[f"status/{host.buildset}/{host.name}.json"] = json.dumps(record)
    for bs in config.buildsets:  # the recorded rollout: each set's build passed its test stage
        files[f"status/{bs.name}/rollout.json"] = json.dumps({"tested": [build_id(config, bs)]})
    Ledger(repo).record(
        Record("facts recorded", "worktree", None, None, "daemon", "success", files=files)
    )
    assert main(["plan", str(repo), "--offline", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    steps = {
        (h["host"], s["kind"])
        for b in document["buildsets"]
        for st in b["stages"]
        for h in st["hosts"]
        for s in h["steps"]
    }
    assert steps == {("web1", "write-config"), ("db2", "unreachable")}
    assert main(["status", str(repo), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "db2: no facts recorded in the ledger" in out
    assert HostFacts.from_json(facts["web1"].to_json()) == facts["web1"]
