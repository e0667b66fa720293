"""Quarantine by what failed (issue 12 #5): in the ledger, so every reconciler and apply sees it.

A build that failed its test stage is not retried by a commit that changes
nothing about the build (a README edit); `reconciler release` (a ledger
commit naming who) lifts it; `apply --retry-quarantined` overrides it once.
"""

from __future__ import annotations

import json
import subprocess
import sys

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from tests.rollout.conftest import ROOT, Lab


def _reconciler(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip


def test_a_failed_build_is_held_until_released(small_lab: Lab) -> None:
    lab = small_lab
    lab.edit("buildsets/lab/make.conf", r"\Z", "\nCFLAGS+=-pipe\n", "build with -pipe")
    build = build_id(load_config(lab.repo, "HEAD"), "lab")
    lab.fleet.set_fault("tester", "health-fails")
    failed = lab.apply("--buildset", "lab")
    lab.fleet.clear_fault("tester", "health-fails")
    assert failed.returncode == 1, failed.stdout[-3000:]
    held = json.loads(lab.ledger.read("status/quarantine.json") or "{}")
    assert held[build]["buildset"] == "lab" and "tester" in held[build]["reason"]
    assert any(e.outcome == "quarantined" and e.build == build for e in lab.entries())

    # A README edit changes no build input: the build stays held, nothing is installed.
    readme = lab.repo / "README.md"
    readme.write_text(readme.read_text() + "\nnote\n")
    lab.edit("README.md", r"^note$", "note.", "README only")
    installs = lab.counts("installworld")
    plan = _reconciler(lab, "plan", str(lab.repo), "--ssh-key", str(lab.fleet.client_key))
    assert f"build {build[:12]} is quarantined" in plan.stdout
    assert f"`reconciler release lab {build[:12]}`" in plan.stdout
    held_apply = lab.apply("--buildset", "lab")
    assert "is quarantined; nothing done" in held_apply.stdout, held_apply.stdout[-2000:]
    assert lab.counts("installworld") == installs

    # release (a ledger commit naming who) lifts it: the next apply tries it.
    wrong = _reconciler(lab, "release", "lab", "0123456789ab", str(lab.repo))
    assert wrong.returncode == 1 and "has no quarantined build" in wrong.stderr
    done = _reconciler(lab, "release", "lab", build[:12], str(lab.repo))
    assert done.returncode == 0, done.stderr
    released = next(e for e in lab.entries()[::-1] if e.outcome == "released")
    assert released.build == build and "released from quarantine by " in released.subject
    assert json.loads(lab.ledger.read("status/quarantine.json") or "{}") == {}
    lab.fleet.set_fault("tester", "health-fails")
    assert lab.apply("--buildset", "lab").returncode == 1  # tried, failed again: held again
    lab.fleet.clear_fault("tester", "health-fails")
    assert build in json.loads(lab.ledger.read("status/quarantine.json") or "{}")

    # apply --retry-quarantined overrides it once; passing its test stage lifts it.
    retried = lab.apply("--buildset", "lab", "--retry-quarantined")
    assert retried.returncode == 0, retried.stdout[-3000:]
    assert json.loads(lab.ledger.read("status/quarantine.json") or "{}") == {}
    again = lab.apply("--buildset", "lab")
    assert again.returncode == 0 and "in sync" in again.stdout, again.stdout[-3000:]
