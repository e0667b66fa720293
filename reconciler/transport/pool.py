"""One cached connection per host for a whole fleet.

The pool knows hosts by name only: ``resolve(name)`` gives the target and
the pinned keys (reconciler.facts.connect builds it from the config repo and
the local settings). Safe to use from several threads: each host is
connected once, under its own lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import paramiko

from reconciler.transport.ssh import Connection, load_key
from reconciler.transport.target import Target

Resolver = Callable[[str], tuple[Target, Sequence[paramiko.PKey]]]


class ConnectionPool:
    def __init__(
        self,
        resolve: Resolver,
        *,
        key_path: str | Path,
        connect_timeout: float = 10.0,
        command_timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self._resolve = resolve
        self._key_path = key_path
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._retries = retries
        self._backoff = backoff
        self._key: paramiko.PKey | None = None
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._connections: dict[str, Connection] = {}

    def _client_key(self) -> paramiko.PKey:
        with self._lock:
            if self._key is None:
                self._key = load_key(self._key_path)
            return self._key

    def get(self, name: str) -> Connection:
        """The host's connection, opened on first use and reused after."""
        key = self._client_key()
        with self._lock:
            host_lock = self._host_locks.setdefault(name, threading.Lock())
        with host_lock:
            conn = self._connections.get(name)
            if conn is None:
                target, pins = self._resolve(name)
                conn = Connection(
                    target,
                    pins=pins,
                    key=key,
                    user=target.user,
                    connect_timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                    retries=self._retries,
                    backoff=self._backoff,
                )
                conn.open()
                self._connections[name] = conn
            return conn

    def drop(self, name: str) -> None:
        """Forget the host's connection (after a reboot, say)."""
        with self._lock:
            conn = self._connections.pop(name, None)
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
