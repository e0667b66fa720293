from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from reconciler.errors import (
    AuthenticationFailed,
    CommandTimeout,
    HostKeyRejected,
    HostUnreachable,
    TransportError,
)
from reconciler.facts.connect import connect, pins_of, target_of
from reconciler.sim import hostkeys
from reconciler.transport.ssh import Connection, fingerprint, load_key
from tests.transport.sshd import Sshd, free_port


def _connect(server: Sshd, **kw: object) -> Connection:
    return connect(server.host, known_hosts=server.known_hosts, key_path=server.key_path, **kw)  # type: ignore[arg-type]


def test_run_returns_exit_status_and_both_streams(sshd: Sshd) -> None:
    with _connect(sshd) as conn:
        result = conn.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
        assert (result.exit_code, result.stdout, result.stderr) == (7, "out\n", "err\n")
        again = conn.run(["echo", "reused"])
        assert again.ok and again.stdout == "reused\n"


def test_session_uses_aead_cipher_and_tcp_nodelay(sshd: Sshd) -> None:
    # Both are what keeps a command at a few ms of CPU and latency (see _transport).
    import socket

    with _connect(sshd) as conn:
        assert conn.run(["true"]).ok
        transport = conn._client.get_transport() if conn._client else None
        assert transport is not None
        assert transport.remote_cipher.endswith("-gcm@openssh.com")
        assert transport.local_cipher == transport.remote_cipher
        sock = transport.sock
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def _wakeups(thread_id: int | None) -> int:
    """How often a thread of this process has gone to sleep and woken (the kernel's count)."""
    status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    (line,) = [x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches:")]
    return int(line.split()[1])


def test_an_idle_connection_wakes_its_reader_seldom_and_still_closes(sshd: Sshd) -> None:
    # The daemon holds one connection per host for hours: each wake-up of
    # paramiko's reader thread is CPU spent on nothing (at 0.1 s, its default,
    # or the 1 s used while connecting, an idle 60 s poll cost more than its probe).
    with _connect(sshd) as conn:
        assert conn.run(["true"]).ok
        transport = conn._client.get_transport() if conn._client else None
        assert transport is not None and transport.native_id is not None
        time.sleep(0.5)  # the reply's packets are handled
        before = _wakeups(transport.native_id)
        time.sleep(6.0)
        woke = _wakeups(transport.native_id) - before
        assert woke <= 3, f"the idle reader woke {woke} times in 6 s"
        assert conn.run(["echo", "still"]).stdout == "still\n"  # data wakes it at once
    # Closing does not wait for the reader, and the reader ends within a wake-up.
    transport.join(timeout=7.0)
    assert not transport.is_alive()


def test_values_stay_values_over_ssh(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker}); `touch {marker}`"
    with _connect(sshd) as conn:
        assert conn.run(["printf", "%s", evil]).stdout == evil
    assert not marker.exists()


def test_stdin_and_large_output(sshd: Sshd) -> None:
    payload = "x" * 300_000 + "\n"
    with _connect(sshd) as conn:
        result = conn.run(["cat"], stdin=payload)
        assert result.stdout == payload


def test_write_and_read_file_atomically(sshd: Sshd, tmp_path: Path) -> None:
    target = tmp_path / "etc" / "make.conf"
    target.parent.mkdir()
    with _connect(sshd) as conn:
        assert conn.read_file(str(target)) is None
        conn.write_file(str(target), "CPUTYPE?=native\n$(reboot)\n", mode=0o640)
        assert conn.read_file(str(target)) == "CPUTYPE?=native\n$(reboot)\n"
        assert target.stat().st_mode & 0o777 == 0o640
        assert sorted(p.name for p in target.parent.iterdir()) == ["make.conf"]  # no temp left
        with pytest.raises(TransportError):
            conn.write_file(str(tmp_path / "missing-dir" / "f"), "x")


def test_command_timeout_names_the_host_in_a_field(sshd: Sshd) -> None:
    with _connect(sshd) as conn:
        start = time.monotonic()
        with pytest.raises(CommandTimeout, match="did not finish in time") as info:
            conn.run(["sleep", "5"], timeout=0.5)
        assert info.value.host == "plain1" and "plain1" not in str(info.value)
        assert info.value.described.startswith("plain1: command did not finish")
        assert time.monotonic() - start < 3
        assert conn.run(["true"]).ok  # still usable


def test_settings_command_timeout_bounds_commands_without_their_own(sshd: Sshd) -> None:
    conn = Connection(
        target_of(sshd.host),
        pins=pins_of(sshd.known_hosts, sshd.host),
        key=load_key(sshd.key_path),
        user="root",
        command_timeout=0.5,
    ).open()
    with conn:
        start = time.monotonic()
        with pytest.raises(CommandTimeout):
            conn.run(["sleep", "5"])  # no timeout of its own: the setting's
        assert time.monotonic() - start < 3
        assert conn.run(["sleep", "1"], timeout=5).ok  # its own bound wins


def test_unknown_host_key_is_refused_with_fingerprint(sshd: Sshd) -> None:
    other = hostkeys.known_hosts_line("somebody-else", "127.9.9.9") + "\n"
    with pytest.raises(HostKeyRejected) as info:
        connect(sshd.host, known_hosts=other, key_path=sshd.key_path, retries=1)
    message = str(info.value)
    expected = fingerprint(load_key_public("plain1"))
    assert info.value.host == "plain1" and not message.startswith("plain1")
    assert sshd.host.address in message and expected in message
    assert "not in the config repo's known_hosts" in message


def test_changed_host_key_is_refused(sshd: Sshd) -> None:
    # The pin names this host but carries another key: a changed key.
    wrong = f"plain1 {hostkeys.public_key_line('impostor')}\n"
    with pytest.raises(HostKeyRejected, match=r"^host key CHANGED") as info:
        connect(sshd.host, known_hosts=wrong, key_path=sshd.key_path, retries=1)
    assert fingerprint(load_key_public("plain1")) in str(info.value)
    assert fingerprint(load_key_public("impostor")) in str(info.value)
    assert "replace its known_hosts line" in str(info.value)


def test_refused_connection_is_unreachable_after_bounded_retries(sshd: Sshd) -> None:
    port = free_port("127.0.252.2")
    host = dataclasses.replace(sshd.host, address="127.0.252.2", port=port)
    sleeps: list[float] = []
    conn = Connection(
        target_of(host),
        pins=pins_of(sshd.known_hosts, host),
        key=load_key(sshd.key_path),
        user="root",
        retries=3,
        backoff=0.5,
        sleep=sleeps.append,
    )
    with pytest.raises(HostUnreachable) as info:
        conn.open()
    assert sleeps == [0.5, 1.0]
    assert str(info.value) == (
        f"cannot connect to 127.0.252.2:{port}: "
        "connection refused (is sshd running, and on this port?)"
    )
    assert info.value.host == "plain1"


def test_wrong_user_is_an_auth_error_not_retried(sshd: Sshd) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        _connect(sshd, user="nobody-here", retries=3)
    assert not isinstance(info.value, HostUnreachable)
    client = fingerprint(load_key(sshd.key_path))
    assert str(info.value) == (
        f"authentication at {sshd.host.address}:22 failed: the host refused the key "
        f"{client} for 'nobody-here' (is its public key in ~nobody-here/.ssh/authorized_keys "
        "on the host?)"
    )


def test_reconnects_after_the_connection_drops(sshd: Sshd) -> None:
    with _connect(sshd) as conn:
        assert conn.run(["true"]).ok
        conn._client.get_transport().close()  # type: ignore[union-attr]
        assert conn.run(["echo", "back"]).stdout == "back\n"


def load_key_public(name: str):  # type: ignore[no-untyped-def]
    import base64

    import paramiko

    keytype, data = hostkeys.public_key_line(name).split()[:2]
    return paramiko.PKey.from_type_string(keytype, base64.b64decode(data))


def test_connection_dropped_mid_command_is_unreachable_then_reconnects(sshd: Sshd) -> None:
    with _connect(sshd) as conn:
        start = time.monotonic()
        # The shell's parent is this session's sshd process: killing it drops the link.
        with pytest.raises(HostUnreachable, match=r"^connection lost during"):
            conn.run(["sh", "-c", "echo started; kill -9 $PPID; sleep 20"], timeout=15)
        assert time.monotonic() - start < 10
        assert conn.run(["echo", "again"]).stdout == "again\n"


def test_observing_a_host_that_is_not_freebsd_gives_empty_facts(sshd: Sshd) -> None:
    from reconciler.config.model import BuildSet, Config, RolloutPolicy, Source
    from reconciler.facts.observe import observe_host

    bs = BuildSet("lab", "amd64", "plain1", 1, (sshd.host,), "", "", RolloutPolicy())
    config = Config(Source("u", "stable/14", "0" * 40), "plain1", (bs,), (), sshd.known_hosts)
    with _connect(sshd) as conn:
        facts = observe_host(conn, config, sshd.host)
    assert facts.reachable and facts.host == "plain1"
    assert facts.versions is not None and facts.versions.installed_kernel is None
    assert facts.boot_envs is not None and not facts.boot_envs.available
    assert facts.marker is None and facts.objtree is not None and facts.objtree.builds == {}
    assert facts.source is not None and not facts.source.present
