"""One cached connection per host for a whole fleet.

The client key and a user override come from the reconciler's local settings
(``ssh_key``, ``ssh_user``), never from the config repo; the host keys come
from the config repo's ``known_hosts``. Safe to use from several threads: each
host is connected once, under its own lock.
"""

from __future__ import annotations

import threading
from types import TracebackType

import paramiko

from reconciler.config.model import Config, Host
from reconciler.settings import Settings
from reconciler.transport.ssh import Connection, load_key


class ConnectionPool:
    def __init__(
        self, config: Config, settings: Settings, *, retries: int = 3, backoff: float = 0.5
    ) -> None:
        self.config = config
        self.settings = settings
        self._retries = retries
        self._backoff = backoff
        self._key: paramiko.PKey | None = None
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._connections: dict[str, Connection] = {}

    def _client_key(self) -> paramiko.PKey:
        with self._lock:
            if self._key is None:
                self._key = load_key(self.settings.ssh_key)
            return self._key

    def get(self, host: Host) -> Connection:
        """The host's connection, opened on first use and reused after."""
        key = self._client_key()
        with self._lock:
            host_lock = self._host_locks.setdefault(host.name, threading.Lock())
        with host_lock:
            conn = self._connections.get(host.name)
            if conn is None:
                conn = Connection(
                    host,
                    known_hosts=self.config.known_hosts,
                    key=key,
                    user=self.settings.ssh_user or host.user,
                    connect_timeout=self.settings.connect_timeout,
                    retries=self._retries,
                    backoff=self._backoff,
                )
                conn.open()
                self._connections[host.name] = conn
            return conn

    def drop(self, host: Host) -> None:
        """Forget the host's connection (after a reboot, say)."""
        with self._lock:
            conn = self._connections.pop(host.name, None)
        if conn is not None:
            conn.close()

    def close_all(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for conn in connections:
            conn.close()

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_all()
