"""`reconciler sim` as a user runs it: the last --dir remembered, faults cleared, JSON status."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from tests.commands.terminal import ROOT, environment, run
from tests.conftest import fresh_subnet


def test_sim_remembers_its_fleet_clears_every_fault_and_prints_json(tmp_path: Path) -> None:
    directory = tmp_path / "fleet"
    env = environment({"XDG_STATE_HOME": str(tmp_path / "state")}, drop=("RECONCILER_SIM_DIR",))
    up = run(
        "sim", "up", "--dir", str(directory), "--hosts", "2", "--subnet", fresh_subnet(),
        "--boot-seconds", "0.2", env=env,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        remembered = tmp_path / "state" / "reconciler" / "sim-dir"
        assert remembered.read_text().strip() == str(directory.resolve())
        assert "--dir may be left out" in up.stdout

        # No --dir: the fleet `sim up` started.
        assert run("sim", "fault", "host1", "slow", "--value", "2", env=env).returncode == 0
        assert (
            run("sim", "fault", "host1", "build-fails", env=env).stdout
            == "host1: build-fails set\n"
        )
        table = run("sim", "status", env=env)
        assert table.returncode == 0 and "build-fails,slow=2" in table.stdout

        status = run("sim", "status", "--format", "json", env=env)
        document = json.loads(status.stdout)
        jsonschema.validate(
            document, json.loads((ROOT / "schema" / "sim-status.schema.json").read_text())
        )
        assert document["running"] is True and document["directory"] == str(directory.resolve())
        host1 = document["hosts"][0]
        assert host1["host"] == "host1" and host1["faults"] == {"build-fails": True, "slow": "2"}
        assert host1["power"] == "on" and host1["kernel"] == "GENERIC" and host1["port"] == 22

        # --clear without a kind clears every fault of the host; setting one needs its kind.
        cleared = run("sim", "fault", "host1", "--clear", env=env)
        assert cleared.returncode == 0 and cleared.stdout == "host1: build-fails, slow cleared\n"
        json_after = json.loads(run("sim", "status", "--format", "json", env=env).stdout)
        assert json_after["hosts"][0]["faults"] == {}
        bare = run("sim", "fault", "host1", env=env)
        assert bare.returncode == 2 and "which fault?" in bare.stderr

        # RECONCILER_SIM_DIR beats the remembered one.
        elsewhere = run("sim", "status", env={**env, "RECONCILER_SIM_DIR": str(tmp_path / "none")})
        assert elsewhere.returncode == 1
        assert f"{tmp_path / 'none'}: no simulated fleet here" in elsewhere.stderr
    finally:
        down = run("sim", "down", env=env)
        assert down.returncode == 0, down.stderr
    assert f"simulated fleet in {directory.resolve()} is down" in down.stdout
    forgotten = environment(
        {"XDG_STATE_HOME": str(tmp_path / "empty")}, drop=("RECONCILER_SIM_DIR",)
    )
    lost = run("sim", "status", env=forgotten)
    assert lost.returncode == 2 and "which fleet? give --dir DIR" in lost.stderr
