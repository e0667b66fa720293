from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.transport.sshd import Sshd, make_client_key, start_sshd


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_client_key(tmp_path_factory.mktemp("client"))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, client_key: tuple[Path, str]) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"), "plain1", "127.0.252.1", *client_key)
    yield server
    server.stop()
