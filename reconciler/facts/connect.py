"""Connections to the config's hosts: the config's Host and known_hosts turned into targets.

The transport takes a target (name, address, port, user) and parsed keys;
this is where the config repo's ``known_hosts`` pins and the local
settings' key and user override meet it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import paramiko

from reconciler.config.knownhosts import lookup
from reconciler.config.model import Config, Host
from reconciler.settings import Settings
from reconciler.transport.pool import ConnectionPool
from reconciler.transport.ssh import Connection, open_connection, parse_pins
from reconciler.transport.target import Target


def target_of(host: Host, user: str | None = None) -> Target:
    """``user`` (the settings' ssh_user) overrides the host's own."""
    return Target(host.name, host.address, host.port, user or host.user)


def pins_of(known_hosts: str, host: Host) -> list[paramiko.PKey]:
    """Every key the config repo pins for the host, by name or by address."""
    return parse_pins(lookup(known_hosts, host), host.name)


def fleet_pool(config: Config, settings: Settings) -> ConnectionPool:
    """One pool for the hosts of ``config``, logging in as the settings say."""

    def resolve(name: str) -> tuple[Target, Sequence[paramiko.PKey]]:
        host = config.host(name)
        return target_of(host, settings.ssh_user), pins_of(config.known_hosts, host)

    return ConnectionPool(
        resolve,
        key_path=settings.ssh_key,
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
    )


def connect(
    host: Host,
    *,
    known_hosts: str,
    key_path: str | Path | None = None,
    user: str | None = None,
    connect_timeout: float = 10,
    retries: int = 3,
    backoff: float = 0.5,
    key: paramiko.PKey | None = None,
) -> Connection:
    """An open connection to ``host`` trusting only what ``known_hosts`` pins for it."""
    return open_connection(
        target_of(host, user),
        pins=pins_of(known_hosts, host),
        key_path=key_path,
        connect_timeout=connect_timeout,
        retries=retries,
        backoff=backoff,
        key=key,
    )
