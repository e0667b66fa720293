from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_subnet
from tests.transport.sshd import Sshd, make_client_key, start_sshd


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_client_key(tmp_path_factory.mktemp("client"))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, client_key: tuple[Path, str]) -> Iterator[Sshd]:
    # A leased subnet, so parallel test workers never fight over one address.
    address = f"{fresh_subnet()}.1"
    server = start_sshd(tmp_path_factory.mktemp("sshd"), "plain1", address, *client_key)
    yield server
    server.stop()
