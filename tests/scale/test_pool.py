"""The persistent connection pool (reconciler.transport.pool) against a real sshd."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import paramiko
import pytest

from reconciler.errors import HostKeyRejected
from reconciler.facts.connect import pins_of, target_of
from reconciler.sim import hostkeys
from reconciler.transport.pool import ConnectionPool
from reconciler.transport.ssh import parse_pins
from reconciler.transport.target import Target
from tests.conftest import fresh_subnet
from tests.transport.sshd import Sshd, make_client_key, start_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    key = make_client_key(tmp_path_factory.mktemp("client"))
    server = start_sshd(tmp_path_factory.mktemp("sshd"), "pooled", f"{fresh_subnet()}.1", *key)
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead


def resolver(server: Sshd, known_hosts: str | None = None):  # type: ignore[no-untyped-def]
    def resolve(name: str) -> tuple[Target, Sequence[paramiko.PKey]]:
        return target_of(server.host), pins_of(known_hosts or server.known_hosts, server.host)

    return resolve


def test_one_connection_across_uses_and_configs(sshd: Sshd) -> None:
    name = sshd.host.name
    with ConnectionPool(resolver(sshd), key_path=sshd.key_path, max_idle=60) as pool:
        conn = pool.get(name)
        for _ in range(5):
            assert pool.get(name).run(["true"]).ok
        assert pool.get(name) is conn and pool.connects == 1
        pool.use(resolver(sshd))  # a new config, the same host and pins: the same connection
        assert pool.get(name) is conn and pool.connects == 1
        # The host dropped us (a reboot: reboot_and_wait closes the connection): the next
        # command logs in once more, through the same pooled object.
        conn.close()
        assert pool.get(name).run(["true"]).ok and pool.connects == 2
        # A new config pins another key for the host: never the old trust.
        other = hostkeys.known_hosts_line(name, sshd.host.address, sshd.host.port)
        other = other.replace(hostkeys.public_key_line(name).split()[1],
                              hostkeys.public_key_line("someone-else").split()[1])  # fmt: skip
        assert parse_pins([other.split(maxsplit=1)[1]], name)  # a well-formed, different pin
        pool.use(resolver(sshd, other + "\n"))
        with pytest.raises(HostKeyRejected):
            pool.get(name)
        assert pool.open_count == 0
    assert not conn.connected


def test_idle_connections_are_closed_and_reopened(sshd: Sshd) -> None:
    name, clock = sshd.host.name, Clock()
    with ConnectionPool(
        resolver(sshd), key_path=sshd.key_path, max_idle=30, clock=clock
    ) as pool:
        first = pool.get(name)
        assert first.run(["true"]).ok
        assert pool.prune() == []  # used just now
        clock.ahead = 31
        assert pool.prune() == [name] and not first.connected
        second = pool.get(name)
        assert second is not first and second.run(["true"]).ok and pool.connects == 2
        clock.ahead = 62  # stale again: get() itself replaces it
        assert pool.get(name) is not second and pool.connects == 3
        assert pool.prune(keep=["another-host"]) == [name]  # left the config
        assert pool.open_count == 0


def test_one_shot_pools_close_on_exit(sshd: Sshd, tmp_path: Path) -> None:
    with ConnectionPool(resolver(sshd), key_path=sshd.key_path) as pool:
        conn = pool.get(sshd.host.name)
        assert conn.run(["true"]).ok
    assert not conn.connected and pool.connects == 1
