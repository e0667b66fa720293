"""Gates on the simulated fleet: canary waves in order, a reboot group never down together,
and a failure budget over the whole production stage."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.ledger import Entry
from reconciler.sim import hostkeys
from reconciler.sim.fleet import SimFleet
from tests.rollout.conftest import Lab, _lab

EXTRA = {"web3": 15, "web4": 16, "web5": 17}


@pytest.fixture
def wide_lab(sim_fleet_factory: Callable[..., SimFleet], tmp_path: Path) -> Lab:
    """The lab build set with five production web hosts (no db set), waves [1, 2, "50%"]."""

    def widen(repo: Path) -> None:
        shutil.rmtree(repo / "buildsets" / "db")
        path = repo / "buildsets" / "lab" / "buildset.yaml"
        text = path.read_text()
        subnet = re.search(r"address: (127\.\d+\.\d+)\.11", text).group(1)  # type: ignore[union-attr]
        lines = "".join(
            f"  {name}: {{address: {subnet}.{n}, kernconf: WEB}}\n" for name, n in EXTRA.items()
        )
        text = re.sub(r"(?m)^(  web2: .*)$", r"\1\n" + lines.rstrip("\n"), text)
        text = re.sub(r"(?m)^  web2:\s+\{(.*)\}$", r"  web2: {\1, group: lb-a}", text)
        text = re.sub(r"(?m)^  web3: \{(.*)\}$", r"  web3: {\1, group: lb-a}", text)
        text = re.sub(r"(?m)^  batch: .*$", '  batch: [1, 2, "50%"]', text)
        assert text.count("group: lb-a") == 2 and "batch: [1, 2" in text, text
        path.write_text(text)
        with (repo / "known_hosts").open("a") as known:
            for name, n in EXTRA.items():
                known.write(hostkeys.known_hosts_line(name, f"{subnet}.{n}") + "\n")

    return _lab(sim_fleet_factory, tmp_path, before=widen)


def _first(entries: list[Entry], host: str, prefix: str, since: int = 0) -> int:
    return next(
        i
        for i, e in enumerate(entries)
        if i >= since and e.host == host and e.subject.startswith(f"{host}: {prefix}")
    )


def test_waves_groups_and_budget(wide_lab: Lab) -> None:
    lab = wide_lab
    done = lab.apply("--buildset", "lab")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "production in waves of 1, then 2, then 50% at a time" in done.stdout
    assert "reboot group lb-a: at most 1 host(s) installing or rebooting at once" in done.stdout
    entries = lab.entries()
    started = {
        h: _first(entries, h, "installing") for h in ("web1", "web2", "web3", "web4", "web5")
    }
    healthy = {h: _first(entries, h, "installed") for h in started}
    # wave 1 (web1, the canary) ends before wave 2 (web2, web3) starts, which ends before wave 3
    assert healthy["web1"] < min(started["web2"], started["web3"])
    assert max(healthy["web2"], healthy["web3"]) < min(started["web4"], started["web5"])
    # web2 and web3 share reboot group lb-a (max_down 1): one after the other, never both down
    first, second = sorted(("web2", "web3"), key=lambda h: started[h])
    assert healthy[first] < started[second], [e.subject for e in entries]
    # the builder serves /usr/obj: last, alone
    assert _first(entries, "builder", "installing") > max(healthy.values())

    # The budget over the stage: max_failures 0, waves of two in flight, one fails.
    lab.edit("buildsets/lab/buildset.yaml", r"(?m)^  batch: .*$", "  batch: 2", "waves of two")
    lab.edit("buildsets/lab/src.conf", r"\Z", "WITHOUT_GAMES=yes\n", "drop games")
    lab.fleet.set_fault("web1", "health-fails")
    before = len(lab.entries())
    failed = lab.apply("--buildset", "lab")
    assert failed.returncode == 1, failed.stdout[-3000:]
    entries = lab.entries()[before:]
    touched = {e.host for e in entries if e.host and e.subject.startswith(f"{e.host}: installing")}
    assert {"web1", "web2"} <= touched  # both of the first wave ran (web2 was in flight)
    assert not touched & {"web3", "web4", "web5", "builder"}, touched  # no new host started
    halted = [e for e in entries if e.outcome == "halted"]
    assert halted and "more than max_failures=0" in halted[-1].subject
