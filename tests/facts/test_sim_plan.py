"""Facts and plan against a simulated fleet (real sshd, real SSH, no mocks)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from reconciler.cli import main
from reconciler.config import render
from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.errors import HostKeyRejected
from reconciler.facts.connect import connect
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe
from reconciler.plan import make_plan
from reconciler.settings import Settings
from reconciler.sim import hostkeys
from reconciler.sim.fleet import SimFleet
from reconciler.transport.ssh import fingerprint
from tests.conftest import example_fleet_in

# The tests share one module-scoped fleet, started once: Makefile's --dist
# loadfile keeps a file on one pytest-xdist worker. Each test stands alone.

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "plan.schema.json").read_text()
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    # Its own fleet, not the session's: these tests edit and stop hosts.
    yield from example_fleet_in(tmp_path_factory.mktemp("facts-fleet"))


@pytest.fixture(scope="module")
def config(fleet: SimFleet) -> Config:
    return load_config(fleet.repo)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def settings(fleet: SimFleet) -> Settings:
    return Settings(ssh_key=str(fleet.client_key), parallel=8)


def kinds(plan, bs: str, stage: str, host: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.kind for h in plan.buildset(bs).stage(stage).hosts if h.host == host for s in h.steps]


def test_fresh_fleet_plans_the_full_pipeline(
    fleet: SimFleet, config: Config, settings: Settings
) -> None:
    facts = observe(config, settings)
    assert all(f.reachable for f in facts.values()), {n: f.error for n, f in facts.items()}
    builder = facts["builder"]
    assert builder.versions is not None and builder.versions.ident == "BUILDER"
    assert builder.source is not None and builder.source.present
    assert builder.boot_envs is not None and builder.boot_envs.booted is not None
    plan = make_plan(config, facts)
    shared = [s.kind for s in plan.shared.steps]
    assert "checkout-source" in shared and "copy-kernel-configs" in shared
    assert "mount-nfs" in kinds(plan, "lab", "source", "web1")
    assert kinds(plan, "lab", "build", "builder")[-1] == "build"
    assert kinds(plan, "lab", "test", "tester")[-3:] == ["install", "reboot", "confirm"]
    assert kinds(plan, "lab", "production", "web2")[-3:] == ["install", "reboot", "confirm"]
    assert plan.buildset("lab").builds == 1 and plan.buildset("db").builds == 1
    # one reboot per boot-environment host, two per in-place host (kernel, then world)
    reboots = sum(
        2 if config.buildset(h.buildset).rollout.install == "in-place" else 1 for h in config.hosts
    )
    assert plan.counts()["reboots"] == reboots == 8
    jsonschema.validate(plan.to_json(), SCHEMA)
    # The facts survive the ledger's JSON.
    assert HostFacts.from_json(json.loads(json.dumps(builder.to_json()))) == builder


def test_hand_edited_make_conf_shows_only_on_that_host(config: Config, settings: Settings) -> None:
    # Converge every host's config files first, then edit one by hand.
    for bs in config.buildsets:
        for host in bs.hosts:
            with connect(host, known_hosts=config.known_hosts, key_path=settings.ssh_key) as conn:
                conn.write_file("/etc/make.conf", render.make_conf(config, bs, host))
                conn.write_file("/etc/src.conf", render.src_conf(config, bs))
    plan = make_plan(config, observe(config, settings))
    assert not [s for b in plan.buildsets for s in b.steps if s.kind == "write-config"]

    # db2 installs in place (its /etc is written before the install); web1 into a new boot
    # environment (its files go into the BE with the install, the running /etc stays).
    for name in ("db2", "web1"):
        host = config.host(name)
        with connect(host, known_hosts=config.known_hosts, key_path=settings.ssh_key) as conn:
            text = conn.read_file("/etc/make.conf")
            assert text is not None
            conn.write_file("/etc/make.conf", text + "CFLAGS+=-O3\n")
    plan = make_plan(config, observe(config, settings))
    writes = [
        (h.host, s.reason)
        for b in plan.buildsets
        for st in b.stages
        for h in st.hosts
        for s in h.steps
        if s.kind == "write-config"
    ]
    assert writes == [("db2", "make.conf differs: 1 line")]
    notes = {
        h.host: h.notes for b in plan.buildsets for st in b.stages for h in st.hosts if h.notes
    }
    assert notes == {"web1": ("make.conf/src.conf go into the new boot environment",)}


def test_unknown_host_key_is_refused(config: Config, settings: Settings) -> None:
    tester = config.host("tester")
    pinned = "\n".join(
        hostkeys.known_hosts_line("tester", tester.address).replace(
            hostkeys.public_key_line("tester"), hostkeys.public_key_line("not-tester")
        )
        if line.startswith("tester,")
        else line
        for line in config.known_hosts.splitlines()
    )
    assert pinned != config.known_hosts
    with pytest.raises(HostKeyRejected) as info:
        connect(tester, known_hosts=pinned, key_path=settings.ssh_key, retries=1)
    offered = fingerprint(_public("tester"))
    assert (
        info.value.host == "tester"
        and offered in str(info.value)
        and tester.address in str(info.value)
    )

    unpinned = "\n".join(
        line for line in config.known_hosts.splitlines() if not line.startswith("tester,")
    )
    facts = observe(
        dataclasses.replace(config, known_hosts=unpinned), settings, hosts=["tester", "web1"]
    )
    assert not facts["tester"].reachable and offered in (facts["tester"].error or "")
    assert "not in the config repo's known_hosts" in (facts["tester"].error or "")
    assert facts["web1"].reachable


def test_cli_plan_json_markdown_and_offline(
    fleet: SimFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(fleet.repo)  # type: ignore[attr-defined]
    key = str(fleet.client_key)
    assert main(["plan", repo, "--ssh-key", key, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    assert document["counts"]["builds"] == 2
    assert main(["plan", repo, "--offline"]) == 1
    assert "no ledger yet" in capsys.readouterr().err
    assert main(["status", repo, "--ssh-key", key]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["HOST", "SET", "STAGE"]
    assert len(out.splitlines()) == 1 + 6


def test_stopped_host_is_unreachable_while_others_are_planned(
    fleet: SimFleet, config: Config, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.ssh("web2", "shutdown -p now", timeout=30)
    deadline = time.monotonic() + 30
    while fleet.state("web2").get("power") != "off" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fleet.state("web2").get("power") == "off"
    fast = dataclasses.replace(settings, connect_timeout=3.0)
    facts = observe(config, fast)
    # The facts are web2's: the reason itself does not repeat the name.
    assert not facts["web2"].reachable
    where = config.host("web2").address
    assert (facts["web2"].error or "").startswith(f"cannot connect to {where}")
    assert all(f.reachable for name, f in facts.items() if name != "web2")
    plan = make_plan(config, facts)
    assert kinds(plan, "lab", "production", "web2") == ["unreachable"]
    assert kinds(plan, "lab", "production", "web1")[-3:] == ["install", "reboot", "confirm"]
    assert plan.counts()["unreachable"] == 1
    # Every row is printed, and the exit status says a host was not reached (README).
    assert main(["status", str(fleet.repo), "--ssh-key", settings.ssh_key, "--format", "json"]) == 1  # type: ignore[attr-defined]
    rows = {r["host"]: r for r in json.loads(capsys.readouterr().out)["hosts"]}
    assert rows["web2"]["reachable"] is False and rows["web2"]["in_sync"] is False
    assert rows["web1"]["reachable"] is True and rows["web1"]["kernel"]


def _public(name: str):  # type: ignore[no-untyped-def]
    import base64

    import paramiko

    keytype, data = hostkeys.public_key_line(name).split()[:2]
    return paramiko.PKey.from_type_string(keytype, base64.b64decode(data))
