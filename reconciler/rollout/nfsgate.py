"""NFS servers are not rebooted under clients that are installing from them.

Build sets roll out in parallel, and the src host serves ``/usr/src`` (and
the ports tree) to every set: rebooting it while a host of another set is
between its first install step and its verification pulls the files from
under that install (a boot-time NFS mount that fails, an ``etcupdate -p``
that cannot build its tree). So a host holds a client ticket on each server
it mounts from, from its first disruptive step until its loop ends; a server
reboots only when it holds the server's side: no ticket held, and no new one
handed out while it waits or reboots (the server's side is preferred).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


class NfsGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._clients: dict[str, set[str]] = {}  # server -> clients holding a ticket
        self._rebooting: set[str] = set()  # servers rebooting or waiting to

    def enter(self, client: str, servers: Iterable[str], stopped: Callable[[], bool]) -> bool:
        """Take a ticket on each server (waits while one of them reboots); False if stopped."""
        wanted = [s for s in servers if s != client]
        with self._cond:
            while any(s in self._rebooting for s in wanted):
                if stopped():
                    return False
                self._cond.wait(timeout=0.5)
            for server in wanted:
                self._clients.setdefault(server, set()).add(client)
            return True

    def leave(self, client: str) -> None:
        with self._cond:
            for holders in self._clients.values():
                holders.discard(client)
            self._cond.notify_all()

    def holders(self, server: str) -> set[str]:
        with self._cond:
            return set(self._clients.get(server, ()))

    def begin_reboot(self, server: str, stopped: Callable[[], bool]) -> bool:
        """Wait until no client holds a ticket on ``server``; False if stopped meanwhile."""
        with self._cond:
            self._rebooting.add(server)
            while self._clients.get(server):
                if stopped():
                    self._rebooting.discard(server)
                    self._cond.notify_all()
                    return False
                self._cond.wait(timeout=0.5)
            return True

    def end_reboot(self, server: str) -> None:
        with self._cond:
            self._rebooting.discard(server)
            self._cond.notify_all()
