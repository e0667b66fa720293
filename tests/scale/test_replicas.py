"""Several `reconciler run` replicas on one bare config repo share its build sets by leases.

Real processes, the simulated fleet, one bare repo as the git server. The
lease of each set is a ref on that repo (reconciler/lease.py); the tests read
those refs, the ledger the replicas push there, and the hosts' own counters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.gitutil import git, identity_env
from reconciler.lease import LeaseStore
from reconciler.ledger import Entry, Ledger
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.conftest import fresh_subnet

ROOT = Path(__file__).resolve().parents[2]
LEASE = 4.0  # seconds: renewed every 0.8 s, skew margin 0.4 s
POLL = 3.0


class Replicas:
    """A bare config repo, its fleet, and replica processes (each its own work dir)."""

    def __init__(self, tmp: Path, factory: Callable[..., SimFleet], *, sets: tuple[str, ...]):
        self.tmp = tmp
        checkout = copy_example_repo(tmp / "checkout", subnet=fresh_subnet())
        for name in ("lab", "db"):
            path = checkout / "buildsets" / name / "buildset.yaml"
            if name not in sets:
                shutil.rmtree(path.parent)
                continue
            text = re.sub(r"soak: \d+", "soak: 1", path.read_text())
            path.write_text(re.sub(r"(?m)^  web2:.*\n", "", text), encoding="utf-8")
        git(checkout, "add", "-A")
        git(checkout, "commit", "-q", "-m", "Smaller sets, short soaks", env=identity_env())
        self.bare = tmp / "fleet-config.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(checkout), str(self.bare)], check=True)
        self.generation = git(self.bare, "rev-parse", "main")
        self.fleet = factory(checkout, build_seconds=3.0, install_seconds=1.5, boot_seconds=0.3)
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str) -> None:
        settings = self.tmp / f"{name}.toml"
        settings.write_text(
            f'repo = "{self.bare}"\nwork_dir = "{self.tmp / name}"\n'
            f'ssh_key = "{self.fleet.client_key}"\npoll_interval = {POLL}\n'
            f'log_format = "json"\nreplica_id = "{name}"\nlease_seconds = {LEASE}\n'
            'status_listen = "127.0.0.1:0"\n',
            encoding="utf-8",
        )
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(settings)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp / f"{name}.log").open("w"),
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def events(self, name: str) -> list[dict[str, object]]:
        lines = (self.tmp / f"{name}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def holders(self) -> dict[str, str]:
        return {n: lease.holder for n, lease in LeaseStore(self.bare).read().sets.items()}

    def entries(self) -> list[Entry]:
        return list(reversed(Ledger(self.bare).entries()))  # oldest first

    def converged(self, name: str) -> bool:
        return any(
            e.buildset == name and e.outcome == "success" and e.stage == "production"
            and e.host is None and e.generation == self.generation and "converged" in e.subject
            for e in self.entries()
        )  # fmt: skip

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for name, proc in self.procs.items():
                if proc.poll() not in (None, -signal.SIGKILL):
                    raise AssertionError(f"{name} exited {proc.returncode}:\n{self.tail(name)}")
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}\n" + "\n".join(self.tail(n) for n in self.procs)
        )

    def tail(self, name: str) -> str:
        lines = (self.tmp / f"{name}.log").read_text().splitlines()[-25:]
        return f"--- {name}\n" + "\n".join(lines)

    def metric(self, name: str, metric: str) -> float:
        (url,) = [e["url"] for e in self.events(name) if e["event"] == "status.listen"]
        with urllib.request.urlopen(f"{url}metrics", timeout=10) as response:
            text = response.read().decode()
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(metric)]
        assert values, f"{metric} not in {name}'s /metrics"
        return sum(values)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def two_sets(tmp_path: Path, sim_fleet_factory: Callable[..., SimFleet]) -> Iterator[Replicas]:
    site = Replicas(tmp_path, sim_fleet_factory, sets=("lab", "db"))
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture
def one_set(tmp_path: Path, sim_fleet_factory: Callable[..., SimFleet]) -> Iterator[Replicas]:
    site = Replicas(tmp_path, sim_fleet_factory, sets=("lab",))
    try:
        yield site
    finally:
        site.stop()


def test_three_replicas_share_two_sets_and_one_takes_over_from_a_killed_one(
    two_sets: Replicas,
) -> None:
    site, fleet = two_sets, two_sets.fleet
    for name in ("r1", "r2", "r3"):
        site.start(name)
    site.wait(lambda: set(site.holders()) == {"lab", "db"}, "both sets to be held")
    # Mid-install on the test host of lab: the install job runs on tester.
    site.wait(lambda: fleet.count("tester", "installkernel") >= 1, "tester's install to start")
    assert fleet.count("tester", "installworld") == 0
    victim = site.holders()["lab"]
    site.procs[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    site.procs[victim].wait(10)
    site.wait(lambda: site.holders().get("lab") not in (None, victim), "lab to be taken over", 30)
    took = time.monotonic() - killed_at
    assert took <= LEASE + POLL, f"lab taken over after {took:.1f}s"
    heir = site.holders()["lab"]
    site.wait(lambda: site.converged("lab") and site.converged("db"), "both sets to converge")

    # Each host installed once: the killed replica's install job was followed, not redone.
    hosts = ("builder", "tester", "web1", "db1", "db2")
    assert {h: fleet.count(h, "installworld") for h in hosts} == dict.fromkeys(hosts, 1)
    for host in ("builder", "tester", "web1"):  # boot environments: the original and one new
        bes = fleet.ssh(host, "bectl list -H").stdout.splitlines()
        assert len(bes) == 2, (host, bes)
    entries = site.entries()
    installed = [e for e in entries if e.step == "confirm" and e.outcome == "success" and e.host]
    assert sorted(e.host for e in installed if e.host) == sorted(hosts)  # once each, no more
    # The test stage was not skipped: it passed before production started, under the heir.
    subjects = [e.subject for e in entries if e.buildset == "lab"]
    passed = next(i for i, s in enumerate(subjects) if "passed the test stage" in s)
    assert passed < next(i for i, s in enumerate(subjects) if s.startswith("web1: installing"))
    assert [e for e in site.events(heir) if e["event"] == "lease.taken"]
    # One validated record for the commit, however many replicas saw it.
    assert sum(1 for e in entries if e.outcome == "validated") == 1
    # The ledger stayed linear under three writers (compare-and-swap with replay), and
    # each surviving replica counts the pushes it lost.
    assert git(site.bare, "rev-list", "--merges", "reconciler/status") == ""
    for name in ("r1", "r2", "r3"):
        if name != victim:
            assert site.metric(name, "reconciler_ledger_push_conflicts_total") >= 0
    # `reconciler status` names the holder of each set.
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "status", str(site.bare), "--format", "json",
         "--ssh-key", str(fleet.client_key)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    shown = json.loads(done.stdout)
    held = site.holders()
    assert {r["host"]: r["lease"] for r in shown["hosts"]} == {
        "builder": held["lab"], "tester": held["lab"], "web1": held["lab"],
        "db1": held["db"], "db2": held["db"],
    }  # fmt: skip
    assert {n: v["holder"] for n, v in shown["leases"].items()} == held


def test_a_replica_whose_lease_push_fails_stops_at_the_next_step(one_set: Replicas) -> None:
    site, fleet = one_set, one_set.fleet
    site.start("r1")
    site.wait(lambda: any(e.step == "build" for e in site.entries()), "the build to start")
    # The git server now refuses lease updates (the ledger's pushes still land).
    hook = site.bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read old new ref; do case $ref in refs/reconciler/leases/*|"
        "refs/reconciler/replicas/*) echo 'leases frozen' >&2; exit 1;; esac; done\n"
    )
    hook.chmod(0o755)
    site.wait(lambda: _event(site, "lease.renew"), "a refused renewal", 30)
    site.wait(lambda: _event(site, "rollout.warning", "lease lost"), "the set to stop", 60)
    steps = [e for e in site.events("r1") if e["event"] == "rollout.step"]
    time.sleep(3 * LEASE / 5 + 1)  # a few rounds: nothing new starts
    assert [e for e in site.events("r1") if e["event"] == "rollout.step"] == steps
    assert str(steps[-1]["message"]).startswith("build:")  # the running step finished; no next
    assert fleet.count("tester", "installkernel") == 0
    hook.unlink()  # renewals land again: the replica picks the set up where it stands
    site.wait(lambda: site.converged("lab"), "lab to converge")
    assert fleet.count("builder", "buildworld") == 1
    assert {h: fleet.count(h, "installworld") for h in ("builder", "tester")} == {
        "builder": 1, "tester": 1
    }  # fmt: skip


def _event(site: Replicas, event: str, text: str = "") -> bool:
    return any(e["event"] == event and text in str(e["message"]) for e in site.events("r1"))
