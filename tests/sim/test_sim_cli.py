"""`reconciler sim up|status|fault|power-cycle|down` from the command line, and refusals."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.errors import SimError
from reconciler.sim.fleet import SimFleet, check_prerequisites
from tests.conftest import fresh_subnet


def test_cli_up_status_fault_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "fleet"
    subnet = fresh_subnet()
    argv = [
        "sim",
        "up",
        "--dir",
        str(directory),
        "--hosts",
        "2",
        "--subnet",
        subnet,
        "--boot-seconds",
        "0.2",
        "--ufs",
        "host2",
    ]
    try:
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"ssh -F {directory.resolve()}/ssh_config host1" in out
        assert main(["sim", "fault", "--dir", str(directory), "host2", "slow", "--value", "2"]) == 0
        assert capsys.readouterr().out == "host2: slow set (2)\n"
        assert main(["sim", "status", "--dir", str(directory)]) == 0
        table = capsys.readouterr().out.splitlines()
        header = ["HOST", "ADDRESS", "POWER", "BE", "KERNEL", "REVISION", "FAULTS"]
        assert table[0].split() == header
        rows = {line.split()[0]: line.split() for line in table if line.startswith("host")}
        assert rows["host1"][1:5] == [f"{subnet}.101:22", "on", "default", "GENERIC"]
        assert rows["host2"][3] == "-" and rows["host2"][-1] == "slow=2"
        assert main(["sim", "fault", "--dir", str(directory), "host2", "slow", "--clear"]) == 0
        assert SimFleet.attach(directory).faults("host2") == {}
        assert capsys.readouterr().out == "host2: slow cleared\n"
        # the reset button: the host goes down at once and boots again
        fleet = SimFleet.attach(directory)
        since = time.time()
        assert main(["sim", "power-cycle", "--dir", str(directory), "host1"]) == 0
        assert capsys.readouterr().out == "host1: power-cycled\n"
        fleet.wait_up("host1", 20, since=since)
        assert fleet.count("host1", "power-cycle") == 1
    finally:
        assert main(["sim", "down", "--dir", str(directory)]) == 0
    assert not SimFleet.attach(directory).running()
    assert main(["sim", "status", "--dir", str(directory)]) == 0
    assert "not running" in capsys.readouterr().out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "down", "--dir", str(tmp_path)]) == 1
    assert "no simulated fleet here" in capsys.readouterr().err
    assert main(["sim", "up", "--dir", str(tmp_path / "x")]) == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert (
        main(
            [
                "sim",
                "up",
                "--dir",
                str(tmp_path / "busy"),
                "--hosts",
                "1",
                "--subnet",
                fresh_subnet(),
            ]
        )
        == 1
    )
    assert "not empty" in capsys.readouterr().err


def test_missing_tools_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(SimError) as info:
        check_prerequisites()
    message = str(info.value)
    assert "unshare (apt-get install util-linux)" in message
    assert "ssh (apt-get install openssh-client)" in message
    assert os.geteuid() == 0 and "root" not in message.split("missing", 1)[1].split(";")[0]
