"""The NFS gate: a server does not reboot under clients installing from it (threads, no SSH)."""

from __future__ import annotations

import threading
import time

from reconciler.rollout.nfsgate import NfsGate


def test_server_waits_for_clients_and_new_clients_wait_for_the_server() -> None:
    gate = NfsGate()
    never = lambda: False  # noqa: E731
    assert gate.enter("db2", ["builder", "db1"], never)
    rebooted: list[float] = []

    def server() -> None:
        assert gate.begin_reboot("builder", never)
        rebooted.append(time.monotonic())
        time.sleep(0.3)
        gate.end_reboot("builder")

    thread = threading.Thread(target=server)
    thread.start()
    time.sleep(0.3)
    assert rebooted == []  # db2 still installs from builder
    left = time.monotonic()
    gate.leave("db2")
    thread.join(5)
    assert rebooted and rebooted[0] >= left
    # while the server reboots, a new client waits for it
    assert gate.begin_reboot("builder", never)
    entered: list[float] = []
    client = threading.Thread(target=lambda: entered.append(gate.enter("web1", ["builder"], never)))
    client.start()
    time.sleep(0.3)
    assert entered == []
    gate.end_reboot("builder")
    client.join(5)
    assert entered == [True] and gate.holders("builder") == {"web1"}


def test_a_stop_ends_every_wait() -> None:
    gate = NfsGate()
    assert gate.enter("db2", ["builder"], lambda: False)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    assert gate.begin_reboot("builder", stop.is_set) is False
    # the server gave up: clients may come and go again
    assert gate.enter("web1", ["builder"], lambda: False)
    assert gate.holders("builder") == {"db2", "web1"}


def test_a_host_holds_no_ticket_on_itself() -> None:
    gate = NfsGate()
    assert gate.enter("builder", ["builder"], lambda: False)
    assert gate.holders("builder") == set()
    assert gate.begin_reboot("builder", lambda: False)
