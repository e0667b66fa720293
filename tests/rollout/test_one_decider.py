"""One decider: what `plan` shows is exactly what `apply` then does, step by step.

Each situation is set up on the simulated fleet as a user would meet it
(fresh hosts, an install stopped half-way by Ctrl-C, a host booted through a
one-shot activation, an in-place kernel installed but not booted, drift in
make.conf, a header-only difference, an unreachable host, a commit that
changes no rendered byte). Then `reconciler plan --format json` runs, then
`reconciler apply`, and the steps apply recorded in the ledger
(``Reconciler-Step`` trailers, per host, in order) must be exactly the
plan's steps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.rollout.conftest import ROOT, Lab, read_until

Steps = dict[str, list[str]]


def planned(lab: Lab) -> Steps:
    """Per host, the plan's steps in the order the rollout takes them."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "plan",
            str(lab.repo),
            "--format",
            "json",
            "--ssh-key",
            str(lab.fleet.client_key),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    # exit 1 only for a host that could not be reached (README's table), else 0
    assert out.returncode in (0, 1), out.stderr
    assert (out.returncode == 1) == ("could not be reached or trusted" in out.stderr)
    document = json.loads(out.stdout)
    found: Steps = {}
    stages = [document["shared"]] + [st for b in document["buildsets"] for st in b["stages"]]
    for stage in stages:
        for host in stage["hosts"]:
            found.setdefault(host["host"], []).extend(s["kind"] for s in host["steps"])
    return {h: _collapse(k) for h, k in found.items() if k}


def _collapse(kinds: list[str]) -> list[str]:
    # A step may be recorded more than once (an install records "started"; a
    # reboot records the activation and the reboot): one entry per step.
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def recorded(lab: Lab, since: str | None) -> Steps:
    """Per host, the steps the ledger recorded after commit ``since``."""
    entries = lab.entries()
    if since is not None:
        entries = entries[[e.commit for e in entries].index(since) + 1 :]
    found: Steps = {}
    for entry in entries:
        if entry.host and entry.step:
            found.setdefault(entry.host, []).append(entry.step)
    return {h: _collapse(k) for h, k in found.items()}


def apply_and_compare(lab: Lab) -> Steps:
    before = lab.ledger.head()
    plan = planned(lab)
    done = lab.apply()
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert recorded(lab, before) == plan, done.stdout[-3000:]
    return plan


def interrupt_at(lab: Lab, text: str) -> None:
    """Start apply, send Ctrl-C when ``text`` is printed; it stops after that step."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *lab.argv()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    read_until(proc, text, timeout=180)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=240)[0]
    assert proc.returncode == 130, output
    assert "interrupt received: finishing the running step, starting no new one" in output
    assert "run `reconciler apply` again to resume" in output


def wait_for_detached(lab: Lab, host: str) -> None:
    """Until ``host``'s detached install ended (plan and apply would race it otherwise)."""
    deadline = time.monotonic() + 60
    while planned(lab)[host][0] == "await-install":
        assert time.monotonic() < deadline, f"the detached install on {host} did not end"
        time.sleep(1)


def newer_files(lab: Lab, mark: str) -> dict[str, str]:
    """Managed files changed on any host since ``mark`` was touched (find -newer over SSH)."""
    changed = {}
    for host in lab.fleet.hosts:
        out = lab.fleet.ssh(
            host,
            f"find /etc/make.conf /etc/src.conf /etc/fstab /etc/exports -newer {mark} "
            "2>/dev/null; true",
        ).stdout.strip()
        if out:
            changed[host] = out
    return changed


def test_plan_is_what_apply_does(small_lab: Lab) -> None:
    lab = small_lab
    # 1. fresh hosts: the whole pipeline, the src host's shared steps first
    plan = apply_and_compare(lab)
    assert plan["builder"][:3] == ["checkout-source", "copy-kernel-configs", "export-nfs"]
    assert plan["tester"][-3:] == ["install", "reboot", "confirm"]
    assert plan["db2"][-5:] == ["install-kernel", "reboot", "install-world", "reboot", "confirm"]
    assert planned(lab) == {}

    # 2. a commit that changes no rendered byte: in sync, no commit, no file written
    for host in lab.fleet.hosts:
        lab.fleet.ssh(host, "touch /tmp/mark")
    time.sleep(0.05)
    readme = lab.repo / "README.md"
    readme.write_text(readme.read_text() + "\nA note.\n")
    lab.edit("README.md", r"A note\.", "A note, edited.", "README only")
    head = lab.ledger.head()
    assert planned(lab) == {}
    again = lab.apply()
    assert again.returncode == 0, again.stdout + again.stderr
    assert lab.ledger.head() == head
    assert newer_files(lab, "/tmp/mark") == {}

    # 3. stopped by Ctrl-C after the test host's install: the rest continues from there
    lab.edit("buildsets/lab/src.conf", r"\Z", "WITHOUT_GAMES=yes\n", "Drop games")
    lab.fleet.set_fault("tester", "slow", 20)  # the Ctrl-C lands during the install
    interrupt_at(lab, "lab/tester: install:")
    lab.fleet.clear_fault("tester", "slow")
    # the install job went on detached: the plan waits for it while it runs ...
    assert planned(lab)["tester"] in (["await-install", "reboot", "confirm"], ["reboot", "confirm"])
    wait_for_detached(lab, "tester")
    # ... and once it ended while nobody watched, the rest continues from there
    plan = apply_and_compare(lab)
    assert plan["tester"] == ["reboot", "confirm"]

    # 4. stopped after the test host's reboot: it runs the new BE from a one-shot activation
    lab.edit("buildsets/lab/src.conf", r"\Z", "WITHOUT_FINGER=yes\n", "Drop finger")
    lab.fleet.set_fault("tester", "slow", 5)  # the Ctrl-C lands during the reboot
    interrupt_at(lab, "lab/tester: reboot:")
    lab.fleet.clear_fault("tester", "slow")
    plan = apply_and_compare(lab)
    assert plan["tester"] == ["confirm"]

    # 5. in place, stopped after installkernel: installed, not booted
    lab.edit("buildsets/db/src.conf", r"\Z", "WITHOUT_GAMES=yes\n", "db: drop games")
    lab.fleet.set_fault("db1", "slow", 20)  # the Ctrl-C lands during installkernel
    interrupt_at(lab, "db/db1: install-kernel:")
    lab.fleet.clear_fault("db1", "slow")
    assert planned(lab)["db1"][-4:] == ["reboot", "install-world", "reboot", "confirm"]
    wait_for_detached(lab, "db1")
    plan = apply_and_compare(lab)
    assert plan["db1"] == ["reboot", "install-world", "reboot", "confirm"]

    # 6. drift in make.conf, a header-only difference, an unreachable host
    lab.fleet.ssh("tester", "echo 'CFLAGS+=-O3' >> /etc/make.conf")
    lab.fleet.ssh("db1", "echo 'CFLAGS+=-O3' >> /etc/make.conf")
    lab.fleet.ssh("builder", "sed -i.bak '1s/; edits/ @ 0123456789ab; edits/' /etc/src.conf")
    assert "@ 0123456789ab" in (lab.fleet.read_file("builder", "/etc/src.conf") or "")
    lab.fleet.ssh("db2", "shutdown -p now")
    deadline = time.monotonic() + 30
    while lab.fleet.state("db2").get("power") != "off" and time.monotonic() < deadline:
        time.sleep(0.1)
    plan = apply_and_compare(lab)
    assert plan == {"tester": ["write-config"], "db1": ["write-config"], "db2": ["unreachable"]}
