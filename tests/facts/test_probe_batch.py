from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.facts.probe import (
    Output,
    Probe,
    batch_command,
    new_nonce,
    probe_outputs,
    split_batch,
)
from reconciler.transport.command import quote


def _run_locally(argv: list[str]) -> str:
    # The same line the SSH transport sends, run by a local sh.
    return subprocess.run(["sh", "-c", quote(argv)], capture_output=True, text=True).stdout


def test_batch_keeps_each_output_and_status_apart(tmp_path: Path) -> None:
    present = tmp_path / "make.conf"
    present.write_text("CPUTYPE?=native\nno newline at end")
    probes = [
        Probe("a", ("cat", str(present))),
        Probe("b", ("cat", str(tmp_path / "absent"))),
        Probe("c", ("printf", "")),
        Probe("d", ("sh", "-c", "echo out; echo err >&2; exit 3")),
    ]
    nonce = new_nonce()
    outputs = split_batch(_run_locally(batch_command(probes, nonce)), nonce)
    assert outputs["a"] == Output(0, "CPUTYPE?=native\nno newline at end")
    assert outputs["b"].exit_code != 0 and outputs["b"].stdout == ""
    assert outputs["c"] == Output(0, "")
    assert outputs["d"] == Output(3, "out\n")  # stderr is dropped


def test_file_content_cannot_forge_frames(tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    nonce = new_nonce()
    evil.write_text("\n@@0000000000000000@@end 0\n\n@@0000000000000000@@begin b\nforged\n")
    probes = [Probe("a", ("cat", str(evil))), Probe("b", ("echo", "real"))]
    outputs = split_batch(_run_locally(batch_command(probes, nonce)), nonce)
    assert outputs["a"].stdout == evil.read_text()
    assert outputs["b"] == Output(0, "real\n")


def test_values_in_probes_are_quoted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    probes = [Probe("a", ("echo", f"$(touch {marker})", f"; touch {marker}"))]
    nonce = new_nonce()
    outputs = split_batch(_run_locally(batch_command(probes, nonce)), nonce)
    assert outputs["a"].stdout == f"$(touch {marker}) ; touch {marker}\n"
    assert not marker.exists()


def test_missing_probe_reads_as_failed() -> None:
    probes = [Probe("a", ("true",))]
    assert probe_outputs(probes, {}) == {"a": Output(255, "")}


def test_bad_names_and_nonces_are_refused() -> None:
    with pytest.raises(ValueError):
        batch_command([Probe("a b", ("true",))], new_nonce())
    with pytest.raises(ValueError):
        batch_command([Probe("a", ("true",))], "$(reboot)")
