"""`reconciler run` as a real process against the simulated fleet and a local bare repo.

Nobody runs `apply`: pushes to the bare repo are the only input. One fleet per
test keeps the file fast; the steps of a test depend on each other in order.
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
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.gitutil import git, identity_env
from reconciler.ledger import Entry, Ledger
from reconciler.sim.example import copy_example_repo
from reconciler.sim.fleet import SimFleet
from tests.conftest import fresh_subnet

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("builder", "tester", "web1", "web2")


class Site:
    """A config repo people push to (bare), an admin checkout, the fleet, and daemon processes."""

    def __init__(self, tmp: Path, fleet_factory: Callable[..., SimFleet]) -> None:
        self.tmp = tmp
        self.checkout = copy_example_repo(tmp / "checkout", subnet=fresh_subnet())
        # The lab build set only (boot environments, one reboot per host): fast enough.
        shutil.rmtree(self.checkout / "buildsets" / "db")
        path = self.checkout / "buildsets" / "lab" / "buildset.yaml"
        path.write_text(re.sub(r"soak: \d+", "soak: 1", path.read_text()), encoding="utf-8")
        git(self.checkout, "add", "-A")
        self.commit("The lab only, short soak, for tests")
        self.bare = tmp / "fleet-config.git"
        subprocess.run(
            ["git", "clone", "-q", "--bare", str(self.checkout), str(self.bare)], check=True
        )
        git(self.checkout, "remote", "add", "origin", str(self.bare))
        self.fleet = fleet_factory(self.checkout)
        self.work = tmp / "work"
        self.settings = tmp / "reconciler.toml"
        self.settings.write_text(
            f'repo = "{self.bare}"\nbranch = "main"\nwork_dir = "{self.work}"\n'
            f'ssh_key = "{self.fleet.client_key}"\npoll_interval = 2\nlog_format = "json"\n',
            encoding="utf-8",
        )
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []

    # --- the administrator -----------------------------------------------------------

    def commit(self, message: str) -> str:
        git(self.checkout, "commit", "-q", "-am", message, env=identity_env())
        return git(self.checkout, "rev-parse", "HEAD")

    def edit(self, path: str, pattern: str, replacement: str, message: str) -> str:
        file = self.checkout / path
        text, count = re.subn(pattern, replacement, file.read_text(), flags=re.M)
        assert count, (pattern, path)
        file.write_text(text, encoding="utf-8")
        return self.commit(message)

    def push(self) -> None:
        git(self.checkout, "push", "-q", "origin", "HEAD:refs/heads/main")

    # --- the daemon ------------------------------------------------------------------

    def start(self, *extra: str) -> subprocess.Popen[str]:
        log = self.tmp / f"daemon{len(self.logs)}.log"
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run", "--config", str(self.settings), *extra],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.procs.append(proc)
        return proc

    def events(self, index: int = -1) -> list[dict[str, object]]:
        lines = self.logs[index].read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def state(self) -> dict[str, object]:
        try:
            (path,) = (self.work / "repos").glob("*.state.json")
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def entries(self) -> list[Entry]:
        return Ledger(self.bare).entries()  # newest first, as pushed to the origin

    def make_conf(self, host: str) -> str:
        return self.fleet.read_file(host, "/etc/make.conf") or ""

    def installs(self) -> dict[str, int]:
        return {h: self.fleet.count(h, "installworld") for h in HOSTS}

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            state = self.state()
            if state.get("status") == "failed":
                raise AssertionError(f"generation failed: {state.get('reason')}\n{self.tail()}")
            for proc in self.procs:
                if proc.poll() not in (None, 0, -9):
                    raise AssertionError(f"daemon died ({proc.returncode}):\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.logs[-1].read_text().splitlines()[-30:]) if self.logs else ""

    def converged_on(self, commit: str) -> bool:
        state = self.state()
        return state.get("generation") == commit and state.get("status") == "converged"

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def site(tmp_path: Path, sim_fleet_factory: Callable[..., SimFleet]) -> Site:
    s = Site(tmp_path, sim_fleet_factory)
    yield s  # type: ignore[misc]
    s.stop_all()


def test_the_daemon_alone_keeps_the_fleet_on_the_branch(site: Site) -> None:
    # 1. A push, and nothing else: the hosts converge.
    first = git(site.checkout, "rev-parse", "HEAD")
    daemon = site.start()
    site.push()
    site.wait(lambda: site.converged_on(first), "the first generation to converge", 150)
    # Which commit wrote each host's files is in the ledger; the header names only the repo,
    # so a later commit that changes no rendered byte changes no file.
    entries = site.entries()
    for host in HOSTS:
        header = site.make_conf(host).splitlines()[0]
        assert header.startswith("# Managed by reconciler: ") and "@" not in header, header
        # written live (write-config), or into the new boot environment by the install
        assert any(
            e.host == host and e.step in ("write-config", "install") and e.generation == first
            for e in entries
        ), host
    assert any(e.outcome == "validated" and e.generation == first for e in site.entries())
    installs = site.installs()
    assert all(n == 1 for n in installs.values()), installs

    # 2. A second daemon on the same repo refuses to start.
    other = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--config", str(site.settings),
         "--work-dir", str(site.tmp / "work2"), "--once"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert other.returncode == 1
    assert "another reconciler is running" in other.stderr and "Traceback" not in other.stderr

    # 3. A bad config: recorded as rejected with its problems; nothing changes on hosts.
    before = {h: site.make_conf(h) for h in HOSTS}
    bad = site.edit("buildsets/lab/buildset.yaml", r"^build_host: builder", "build_host: nosuch",
                    "point the lab at a host that does not exist")  # fmt: skip
    site.push()
    site.wait(
        lambda: any(e.outcome == "rejected" and e.generation == bad for e in site.entries()),
        "the rejection",
        30,
    )
    rejected = next(e for e in site.entries() if e.generation == bad)
    assert rejected.stage == "config" and "nosuch" in rejected.body
    time.sleep(3)  # more than a poll: still nothing on the hosts
    assert {h: site.make_conf(h) for h in HOSTS} == before
    assert site.installs() == installs

    # 4. A hand-edited make.conf is put back at the next poll (the bad tip changes nothing).
    path = site.fleet.host_path("web1", "/etc/make.conf")
    path.write_text(path.read_text() + "CFLAGS+=-O3 # tuned by hand\n")
    site.wait(lambda: "tuned by hand" not in site.make_conf("web1"), "the drift to be healed", 40)
    site.wait(
        lambda: any(e.host == "web1" and e.outcome in ("healed", "drift") for e in site.entries()),
        "the healing to be recorded",
        20,
    )
    assert site.installs() == installs  # healed by rewriting the file, not by reinstalling

    # 5. A new build. SIGTERM once the test host is installing: a clean exit at a safe point.
    change = site.edit("buildsets/lab/buildset.yaml", r"^build_host: nosuch", "build_host: builder",
                       "back to the builder")  # fmt: skip
    change = site.edit("buildsets/lab/make.conf", r"\Z", "\nCFLAGS+=-pipe\n", "build with -pipe")
    site.push()
    site.wait(
        lambda: any(e.generation == change and e.host == "tester" for e in site.entries()),
        "the rollout to reach the test host",
        90,
    )
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(120) == 0, site.tail()
    events = [e["event"] for e in site.events()]
    assert events[-2:] == ["daemon.stopping", "daemon.stop"] or events[-1] == "daemon.stop"
    assert site.state().get("status") == "applying"

    # 6. Start again, SIGKILL it mid-rollout, start again: it resumes, installing each host once.
    again = site.start()
    site.wait(
        lambda: any(e.generation == change and e.host in ("web1", "web2") for e in site.entries()),
        "production to start",
        120,
    )
    again.kill()
    again.wait(10)
    last = site.start()
    site.wait(lambda: site.converged_on(change), "the resumed rollout", 150)
    after = site.installs()
    for host in HOSTS:
        assert after[host] == installs[host] + 1, (host, installs, after)
    validated = [e for e in site.entries() if e.outcome == "validated" and e.generation == change]
    assert len(validated) == 1  # resumed, not started over
    last.send_signal(signal.SIGTERM)
    assert last.wait(60) == 0

    # 7. Under the signing policy an unsigned commit is refused and recorded.
    key = site.tmp / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signers = site.tmp / "allowed_signers"
    signers.write_text(f'alice@example.org namespaces="git" {key.with_suffix(".pub").read_text()}')
    unsigned = site.edit("buildsets/lab/make.conf", r"-pipe", "-pipe -g", "unsigned change")
    site.push()
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--config", str(site.settings), "--once",
         "--require-signed-commits", "--allowed-signers", str(signers)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    refusal = site.entries()[0]
    assert (refusal.generation, refusal.outcome, refusal.stage) == (unsigned, "rejected", "daemon")
    assert "no signature" in refusal.body
    assert site.installs() == after
