"""`reconciler validate` finds its command without importing every command's dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from reconciler.cli import main
code = main(["validate", sys.argv[1]])
heavy = [m for m in ("paramiko", "reconciler.rollout", "reconciler.transport.ssh",
                     "reconciler.daemon", "reconciler.sim.fleet") if m in sys.modules]
print("loaded:", heavy)
sys.exit(code or (3 if heavy else 0))
"""


def test_validate_loads_no_ssh_rollout_or_daemon_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "example-repo")],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loaded: []" in done.stdout


def test_every_command_is_listed_and_a_chosen_one_parses_fully() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "--help"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    for name in ("init", "validate", "plan", "status", "apply", "history", "run", "sim", "demo"):
        assert f"    {name} " in done.stdout, name
    plan = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "--help"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert "--detailed-exitcode" in plan.stdout and "--offline" in plan.stdout
