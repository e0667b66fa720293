"""One cached connection per host for a whole fleet.

The pool knows hosts by name only: ``resolve(name)`` gives the target and
the pinned keys (reconciler.facts.connect builds it from the config repo and
the local settings). Safe to use from several threads: each host is
connected once, under its own lock.

Two ways to hold one:

- **one-shot** (``plan``, ``status``, ``apply``): a ``with`` block around one
  run; every connection closes when it ends.
- **persistent** (the daemon, ``max_idle`` set): the caller owns the pool for
  its life and passes it to every converge. A connection stays open across
  cycles, so an idle cycle costs a channel, not a key exchange and a login.
  Bounds: paramiko's keepalive every 15 s (and TCP keepalive) notices a dead
  link; a connection unused for ``max_idle`` seconds is closed
  (:meth:`prune`, or on its next use); a connection whose host dropped it
  (a reboot: ``reboot_and_wait`` closes it; a command that lost the link) is
  opened again on its next command; :meth:`drop` forgets one after a
  transport error. :meth:`use` swaps in the resolver of a new config: a host
  whose address, port, user or pinned keys changed gets a new connection, the
  others keep theirs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paramiko

from reconciler.transport.ssh import Connection, fingerprint, load_key
from reconciler.transport.target import Target

Resolver = Callable[[str], tuple[Target, Sequence[paramiko.PKey]]]


@dataclass
class _Held:
    conn: Connection
    #: what the connection was opened for: the target and the pins' fingerprints
    identity: tuple[Target, tuple[str, ...]]
    #: the resolver generation it was last checked against
    epoch: int


def _identity(target: Target, pins: Sequence[paramiko.PKey]) -> tuple[Target, tuple[str, ...]]:
    return target, tuple(sorted(fingerprint(p) for p in pins))


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
        max_idle: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._epoch = 0
        self._key_path = key_path
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._retries = retries
        self._backoff = backoff
        self._max_idle = max_idle
        self._clock = clock
        self._key: paramiko.PKey | None = None
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._held: dict[str, _Held] = {}
        #: connections opened by connections this pool has let go of
        self._retired_connects = 0

    def _client_key(self) -> paramiko.PKey:
        with self._lock:
            if self._key is None:
                self._key = load_key(self._key_path)
            return self._key

    def use(self, resolve: Resolver) -> None:
        """Resolve hosts with ``resolve`` from now on (a new config); see the module doc."""
        with self._lock:
            self._resolve = resolve
            self._epoch += 1

    def get(self, name: str) -> Connection:
        """The host's connection, opened on first use and reused after."""
        key = self._client_key()
        with self._lock:
            host_lock = self._host_locks.setdefault(name, threading.Lock())
            resolve, epoch = self._resolve, self._epoch
        with host_lock:
            held = self._held.get(name)
            if held is not None and held.epoch != epoch:
                target, pins = resolve(name)
                if _identity(target, pins) != held.identity:
                    self._release(name)  # moved, or re-keyed: never reuse the old trust
                    held = None
                else:
                    held.epoch = epoch
            if held is not None and self._stale(held.conn):
                self._release(name)
                held = None
            if held is None:
                target, pins = resolve(name)
                conn = self._open(target, pins, key)
                held = _Held(conn, _identity(target, pins), epoch)
                with self._lock:
                    self._held[name] = held
            return held.conn

    def fresh(self, name: str) -> Connection:
        """A new connection to the host (key exchange and login now), not kept by the pool.

        For proof that a new login works end to end (confirm-or-revert after a
        reboot), which a connection the pool keeps cannot give. The caller closes it.
        """
        key = self._client_key()
        with self._lock:
            resolve = self._resolve
        target, pins = resolve(name)
        conn = self._open(target, pins, key)
        with self._lock:
            self._retired_connects += 1
        return conn

    def _open(
        self, target: Target, pins: Sequence[paramiko.PKey], key: paramiko.PKey
    ) -> Connection:
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
        return conn

    def _stale(self, conn: Connection) -> bool:
        return self._max_idle is not None and self._clock() - conn.last_used > self._max_idle

    def _release(self, name: str) -> None:
        with self._lock:
            held = self._held.pop(name, None)
            if held is not None:
                self._retired_connects += held.conn.connects
        if held is not None:
            held.conn.close()

    def drop(self, name: str) -> None:
        """Forget the host's connection (after a transport error, say)."""
        self._release(name)

    def prune(self, keep: Sequence[str] | None = None) -> list[str]:
        """Close connections idle longer than ``max_idle``, and those of hosts not in ``keep``.

        Returns the hosts whose connection was closed. A connection in use is
        never idle (its last command just started or is running).
        """
        with self._lock:
            names = list(self._held)
        wanted = set(keep) if keep is not None else None
        closed = []
        for name in names:
            held = self._held.get(name)
            if held is None:
                continue
            if (wanted is not None and name not in wanted) or self._stale(held.conn):
                self._release(name)
                closed.append(name)
        return closed

    @property
    def open_count(self) -> int:
        """Hosts with a live connection now."""
        with self._lock:
            return sum(1 for held in self._held.values() if held.conn.connected)

    @property
    def connects(self) -> int:
        """SSH connections opened over the pool's life (key exchange and login each)."""
        with self._lock:
            return self._retired_connects + sum(h.conn.connects for h in self._held.values())

    def close_all(self) -> None:
        with self._lock:
            held = list(self._held.values())
            self._held.clear()
            self._retired_connects += sum(h.conn.connects for h in held)
        for item in held:
            item.conn.close()

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_all()
