"""Connection failures in words: real sockets where loopback can produce them, real
exception objects (as paramiko and the socket module raise them) where it cannot."""

from __future__ import annotations

import errno
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from reconciler.errors import HostUnreachable
from reconciler.facts.connect import pins_of, target_of
from reconciler.sim import hostkeys
from reconciler.transport.failures import connect_reason
from reconciler.transport.keyscan import ScannedKey, key_label, scan_host_key
from reconciler.transport.ssh import Connection, load_key
from tests.conftest import fresh_subnet
from tests.transport.sshd import Sshd, free_port


def test_words_for_what_loopback_cannot_produce() -> None:
    refused = paramiko.ssh_exception.NoValidConnectionsError(
        {("192.0.2.12", 22): ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")}
    )
    assert str(refused) == "[Errno None] Unable to connect to port 22 on 192.0.2.12"
    assert connect_reason(refused, 10) == (
        "connection refused (is sshd running, and on this port?)"
    )
    no_route = paramiko.ssh_exception.NoValidConnectionsError(
        {("192.0.2.12", 22): OSError(errno.EHOSTUNREACH, "No route to host")}
    )
    assert connect_reason(no_route, 10) == "no route to host (is it up? check the address)"
    assert connect_reason(OSError(errno.ENETUNREACH, "Network is unreachable"), 10) == (
        "network unreachable (check the address and this machine's routes)"
    )
    assert connect_reason(TimeoutError("timed out"), 2.5).startswith("timed out after 2.5s")
    assert connect_reason(OSError(errno.ETIMEDOUT, "Connection timed out"), 10).startswith(
        "timed out after 10s"
    )
    dns = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert connect_reason(dns, 10) == (
        "cannot resolve the host name: Name or service not known (check the address, or DNS)"
    )
    assert connect_reason(EOFError(), 10).startswith(
        "connection closed by the host during the SSH handshake"
    )


def test_resolver_errors_as_getaddrinfo_raises_them() -> None:
    # Real exceptions without asking any resolver (loopback only): a numeric-only
    # lookup of a name, and the IDNA step refusing an empty label.
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo("web9.example", 22, flags=socket.AI_NUMERICHOST)
    assert connect_reason(info.value, 10).startswith("cannot resolve the host name: ")
    with pytest.raises(UnicodeError) as bad:
        socket.getaddrinfo("no..such", 22)
    assert connect_reason(bad.value, 10) == "not a valid host name (check the address)"


def test_not_an_ssh_server() -> None:
    said = paramiko.SSHException('Indecipherable protocol version "HTTP/1.1 400 Bad Request"')
    assert connect_reason(said, 10) == (
        'not an SSH server on this port (it said "HTTP/1.1 400 Bad Request")'
    )


@pytest.fixture
def address() -> str:
    return f"{fresh_subnet()}.7"


def _serve(address: str, behaviour: str) -> Iterator[int]:
    """A TCP server on ``address`` that accepts and then stays silent or hangs up."""
    server = socket.socket()
    server.bind((address, 0))
    server.listen(8)
    port = int(server.getsockname()[1])
    done = threading.Event()
    held: list[socket.socket] = []

    def loop() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            if behaviour == "hang-up":
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        done.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def _connection(sshd: Sshd, address: str, port: int) -> Connection:
    import dataclasses

    host = dataclasses.replace(sshd.host, address=address, port=port)
    return Connection(
        target_of(host),
        pins=pins_of(sshd.known_hosts, host),
        key=load_key(sshd.key_path),
        user="root",
        connect_timeout=1.0,
        retries=1,
    )


def test_silent_server_is_no_banner(sshd: Sshd, address: str) -> None:
    for port in _serve(address, "silent"):
        with pytest.raises(HostUnreachable) as info:
            _connection(sshd, address, port).open()
        assert str(info.value) == (
            f"cannot connect to {address}:{port}: no SSH handshake within 1s "
            "(not an SSH server on this port, or sshd overloaded?)"
        )


def test_server_hanging_up_is_closed_during_handshake(sshd: Sshd, address: str) -> None:
    for port in _serve(address, "hang-up"):
        with pytest.raises(HostUnreachable) as info:
            _connection(sshd, address, port).open()
        reason = str(info.value)
        assert reason.startswith(f"cannot connect to {address}:{port}: connection ")
        assert "during the SSH handshake" in reason, reason


def test_keyscan_fingerprint_is_what_ssh_keygen_prints(sshd: Sshd, tmp_path: Path) -> None:
    scanned = scan_host_key(sshd.host.address, sshd.host.port, name="plain1", timeout=5)
    assert isinstance(scanned, ScannedKey)
    assert f"{scanned.keytype} {scanned.base64}" == hostkeys.public_key_line("plain1")
    public = tmp_path / "plain1.pub"
    public.write_text(hostkeys.public_key_line("plain1") + " plain1\n")
    printed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public)], capture_output=True, text=True, check=True
    ).stdout.split()
    # ssh-keygen -l: "<bits> SHA256:<digest> <comment> (<TYPE>)"
    assert [printed[0], printed[1], printed[-1]] == scanned.keygen_line.split()
    assert key_label("ecdsa-sha2-nistp256") == "ECDSA" and key_label("ssh-rsa") == "RSA"


def test_keyscan_of_a_closed_port_says_refused(address: str) -> None:
    port = free_port(address)
    with pytest.raises(HostUnreachable) as info:
        scan_host_key(address, port, name="web9", timeout=2)
    assert info.value.host == "web9"
    assert str(info.value) == (
        f"cannot connect to {address}:{port}: "
        "connection refused (is sshd running, and on this port?)"
    )
