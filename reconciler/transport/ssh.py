"""SSH connections to managed hosts (the only importer of paramiko).

Policy, in one place:

- Host keys are trusted only when the config repo's ``known_hosts`` pins them
  for the host's name or address. An unknown or changed key is refused with
  :class:`HostKeyRejected` naming the host, its address and the offered key's
  OpenSSH ``SHA256:`` fingerprint. Nothing is ever added, and
  ``~/.ssh/known_hosts``, the agent and default key files are never consulted.
- The client key comes from the reconciler's local settings.
- Connect errors (refused, timed out, banner never came) are retried a bounded
  number of times with exponential backoff; authentication and host-key
  failures are not, since retrying cannot fix them. :mod:`.failures` puts
  each into words (``connection refused (is sshd running ...)``).
- A command never raises for its exit status; transport trouble becomes
  :class:`HostUnreachable` or :class:`CommandTimeout`, chained ``from`` the
  paramiko exception. Errors carry the host's name in ``.host``, not in their text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from reconciler.errors import (
    CommandTimeout,
    HostKeyRejected,
    HostUnreachable,
    SettingsError,
    TransportError,
)
from reconciler.transport import failures
from reconciler.transport.command import quote, sh
from reconciler.transport.target import Target

log = logging.getLogger(__name__)


class _QuietHandshakes(logging.Filter):
    """paramiko logs each failed handshake as an ERROR with a traceback from its
    thread; the reconciler raises it in words instead, so that noise shows with -vv only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.getLogger().isEnabledFor(logging.DEBUG)


logging.getLogger("paramiko.transport").addFilter(_QuietHandshakes())

KEEPALIVE_SECONDS = 15
#: How often a connecting transport's reader thread wakes up (paramiko's default:
#: 0.1 s): the banner, key exchange and login timeouts are checked on these wake-ups.
_CONNECT_WAKEUP = 1.0
#: The same once logged in: an idle connection's reader only looks at its flags and
#: the keepalive then (measured: each wake-up costs the controller about 75 us of CPU,
#: so at 1 s a held connection cost more CPU per 60 s poll than its probe).
_IDLE_WAKEUP = 5.0
_CHUNK = 65536
#: Exit status of read_file's script when the file does not exist.
_ABSENT = 44


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:<base64, unpadded>`` of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_pins(lines: Iterable[str], name: str) -> list[paramiko.PKey]:
    """Public keys from ``KEYTYPE BASE64`` lines (the key part of known_hosts lines)."""
    keys: list[paramiko.PKey] = []
    for line in lines:
        keytype, _, data = line.strip().partition(" ")
        try:
            keys.append(paramiko.PKey.from_type_string(keytype, base64.b64decode(data.split()[0])))
        except (paramiko.SSHException, binascii.Error, IndexError, ValueError) as exc:
            log.warning("%s: ignoring unusable pinned key %s: %s", name, keytype, exc)
    return keys


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse every key the pinned set does not hold; never add one."""

    def __init__(self, host: Target) -> None:
        self.host = host

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyRejected(
            self.host.name,
            f"host key {key.get_name()} {fingerprint(key)} offered by {self.host.pattern} "
            "is not in the config repo's known_hosts; add it there after checking it on the "
            "host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)",
        )


#: Preferred first when the server offers them (OpenSSH has since 6.2): their
#: integrity check runs inside ``cryptography``, while the MAC of the other
#: ciphers is compared byte by byte in Python by paramiko, a third of the
#: reconciler's SSH CPU time when it polls jobs.
_AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _transport(
    sock: Any,
    /,
    *,
    gss_kex: bool = False,
    gss_deleg_creds: bool = True,
    disabled_algorithms: Mapping[str, Iterable[str]] | None = None,
) -> paramiko.Transport:
    """paramiko's Transport with TCP_NODELAY and AEAD ciphers first.

    Without TCP_NODELAY every command waits for the delayed ACK of its own
    small requests (Nagle): about 40 ms a command on Linux, against about 5.
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A connection the daemon keeps across cycles: the kernel notices a peer
        # that vanished without a FIN (power loss), not only paramiko's keepalive.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    del gss_kex, gss_deleg_creds  # named by the type stubs only: paramiko 5 has no GSS-API
    transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
    if isinstance(sock, socket.socket):
        # paramiko's reader thread wakes on every socket timeout (0.1 s) to look
        # at its flags and keepalive: ten wake-ups a second per connection, which
        # for a daemon holding hundreds of idle connections is most of its CPU.
        # Data and close still wake it at once; only those checks go to 1 s,
        # and to _IDLE_WAKEUP once logged in (_connect_once).
        sock.settimeout(_CONNECT_WAKEUP)
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    options.ciphers = tuple(c for c in _AEAD_CIPHERS if c in offered) + tuple(
        c for c in offered if c not in _AEAD_CIPHERS
    )
    return transport


#: Called with the host's name after every failed connection attempt (the daemon's
#: metrics count them). Connections are opened deep inside a rollout, so observers
#: register here rather than being passed down; a listener must not raise.
CONNECT_FAILURE_LISTENERS: list[Callable[[str], None]] = []


class Connection:
    """One SSH client per host, reused across commands; reconnects when dropped."""

    def __init__(
        self,
        host: Target,
        *,
        pins: Sequence[paramiko.PKey],
        key: paramiko.PKey,
        user: str,
        connect_timeout: float = 10.0,
        command_timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self.user = user
        self._pins = tuple(pins)
        self._key = key
        self._connect_timeout = connect_timeout
        #: the bound of a command run without one of its own (settings.command_timeout)
        self._command_timeout = command_timeout
        self._retries = max(1, retries)
        self._backoff = backoff
        self._sleep = sleep
        self._client: paramiko.SSHClient | None = None
        # Several threads may share a connection; only one may (re)connect.
        self._lock = threading.RLock()
        #: SSH connections opened (key exchange and login each), reconnects included
        self.connects = 0
        #: time.monotonic() when a command last started or ended (the pool's idle bound)
        self.last_used = time.monotonic()

    # -- connecting -------------------------------------------------------

    def open(self) -> Connection:
        """Connect now (bounded retries on connect errors only)."""
        last: Exception | None = None
        for attempt in range(self._retries):
            try:
                self._client = self._connect_once()
                self.connects += 1
                self.last_used = time.monotonic()
                return self
            except TransportError as exc:
                for listener in list(CONNECT_FAILURE_LISTENERS):
                    listener(self.host.name)
                if not isinstance(exc, HostUnreachable):
                    raise
                last = exc
            if attempt + 1 < self._retries:
                self._sleep(self._backoff * (2**attempt))
        assert last is not None
        raise last

    def _connect_once(self) -> paramiko.SSHClient:
        host = self.host
        client = paramiko.SSHClient()
        # Only the pinned keys: no load_system_host_keys(), ever.
        for key in self._pins:
            client.get_host_keys().add(host.pattern, key.get_name(), key)
        client.set_missing_host_key_policy(_RejectUnknown(host))
        where = f"{host.address}:{host.port}"
        try:
            client.connect(
                host.address,
                port=host.port,
                username=self.user,
                pkey=self._key,
                timeout=self._connect_timeout,
                banner_timeout=self._connect_timeout,
                auth_timeout=self._connect_timeout,
                allow_agent=False,
                look_for_keys=False,
                transport_factory=_transport,
            )
        except HostKeyRejected:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRejected(
                host.name,
                f"host key CHANGED: {host.pattern} offered {exc.key.get_name()} "
                f"{fingerprint(exc.key)}, the config repo's known_hosts pins "
                f"{fingerprint(exc.expected_key)}; refusing to connect (reinstalled? check "
                "the new key on its console, then replace its known_hosts line)",
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise failures.authentication_failed(
                host.name, where, self.user, exc, fingerprint(self._key)
            ) from exc
        except (OSError, EOFError, UnicodeError, paramiko.SSHException) as exc:
            client.close()
            raise failures.unreachable(host.name, where, exc, self._connect_timeout) from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_SECONDS)
            if isinstance(transport.sock, socket.socket):
                # Logged in: no handshake timeout left to check. The keepalive goes
                # out at most _IDLE_WAKEUP late; a close ends the reader within it.
                transport.sock.settimeout(_IDLE_WAKEUP)
        return client

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            return self._live_transport()

    def _live_transport(self) -> paramiko.Transport:
        if self._client is None:
            self.open()
        assert self._client is not None
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            # The host dropped us (reboot, network); one fresh connection.
            self.close()
            self.open()
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                raise HostUnreachable(self.host.name, "connection lost and not re-established")
        return transport

    @property
    def connected(self) -> bool:
        if self._client is None:
            return False
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    # -- commands ---------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
    ) -> Result:
        """Run one command; never raises on its exit status."""
        line = quote(argv)
        transport = self._transport()
        self.last_used = time.monotonic()
        bound = timeout if timeout is not None else self._command_timeout
        deadline = None if bound is None else time.monotonic() + bound
        with self._lost_is_unreachable(line):
            channel = transport.open_session(timeout=self._connect_timeout)
            channel.exec_command(line)
            if stdin is not None:
                data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
                channel.sendall(data)
            channel.shutdown_write()
            status, out, err = self._ended(channel, deadline, line)
            self.last_used = time.monotonic()
        return Result(
            status,
            out.decode("utf-8", errors="replace"),
            err.decode("utf-8", errors="replace"),
        )

    @contextlib.contextmanager
    def _lost_is_unreachable(self, line: str) -> Iterator[None]:
        """An OS or SSH error during ``line``: the connection is gone (closed here)."""
        try:
            yield
        except (CommandTimeout, HostUnreachable):
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise HostUnreachable(
                self.host.name, f"connection lost during {line[:80]!r}: {exc}"
            ) from exc

    def _ended(
        self, channel: paramiko.Channel, deadline: float | None, line: str
    ) -> tuple[int, bytes, bytes]:
        """The rest of a command's output, then its exit status; the session closed."""
        out, err = self._drain(channel, deadline, line)
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
        # Done with the session: a connection kept for hours must not collect them.
        channel.close()
        if status == -1:
            # No exit status: the session died with the host (shutdown, drop).
            self.close()
            raise HostUnreachable(self.host.name, f"connection lost during {line[:80]!r}")
        return status, out, err

    def _drain(
        self, channel: paramiko.Channel, deadline: float | None, line: str
    ) -> tuple[bytes, bytes]:
        out = bytearray()
        err = bytearray()
        while True:
            while channel.recv_ready():
                out += channel.recv(_CHUNK)
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(_CHUNK)
            if channel.eof_received or channel.closed:
                # EOF arrives after the last data; pick up what raced in.
                while channel.recv_ready():
                    out += channel.recv(_CHUNK)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(_CHUNK)
                # Exit status follows EOF closely; wait in short slices so a
                # dead link and the deadline are still noticed below.
                if channel.status_event.wait(0.5) or channel.closed:
                    return bytes(out), bytes(err)
            if not self.connected:
                self.close()
                raise HostUnreachable(self.host.name, f"connection lost during {line[:80]!r}")
            wait = 1.0
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    channel.close()
                    raise CommandTimeout(
                        self.host.name, f"command did not finish in time: {line[:80]!r}"
                    )
                wait = min(wait, left)
            select.select([channel], [], [], wait)

    def hold(
        self, argv: Sequence[str], *, ready: str, timeout: float = 60.0
    ) -> tuple[Session | None, Result]:
        """Start ``argv`` and leave it running once it prints a line starting with ``ready``.

        Returns ``(session, Result(0, output so far, ""))`` while it runs (it holds
        something on the host, a lock say, until :meth:`Session.end` closes its
        stdin, or until this connection dies), or ``(None, result)`` when it ended
        first. Bounded by ``timeout`` for the ``ready`` line.
        """
        line = quote(argv)
        transport = self._transport()
        self.last_used = time.monotonic()
        deadline = time.monotonic() + timeout
        out = bytearray()
        with self._lost_is_unreachable(line):
            channel = transport.open_session(timeout=self._connect_timeout)
            channel.exec_command(line)
            while True:
                while channel.recv_ready():
                    out += channel.recv(_CHUNK)
                lines = bytes(out).split(b"\n")[:-1]
                if any(line.startswith(ready.encode()) for line in lines):
                    return Session(self, channel, line), Result(0, out.decode(errors="replace"), "")
                if channel.eof_received or channel.closed:
                    break
                if time.monotonic() >= deadline:
                    channel.close()
                    raise CommandTimeout(self.host.name, f"no {ready!r} in time: {line[:80]!r}")
                select.select([channel], [], [], 0.5)
            status, rest, err = self._ended(channel, deadline, line)
        text = (bytes(out) + rest).decode("utf-8", errors="replace")
        return None, Result(status, text, err.decode("utf-8", errors="replace"))

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        """Replace ``path`` atomically: a temp file in the same directory, then mv."""
        script = (
            'umask 077; tmp=$(mktemp "$1.reconciler.XXXXXX") || exit 1; '
            'if cat > "$tmp" && chmod "$2" "$tmp" && mv -f "$tmp" "$1"; then exit 0; fi; '
            'rm -f "$tmp"; exit 1'
        )
        result = self.run(sh(script, path, format(mode, "o")), stdin=text)
        if not result.ok:
            raise TransportError(self.host.name, f"cannot write {path}: {result.stderr.strip()}")

    def read_file(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        result = self.run(sh(f'[ -e "$1" ] || exit {_ABSENT}; exec cat -- "$1"', path))
        if result.exit_code == _ABSENT:
            return None
        if not result.ok:
            raise TransportError(self.host.name, f"cannot read {path}: {result.stderr.strip()}")
        return result.stdout

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Session:
    """A command left running on a host by :meth:`Connection.hold`."""

    def __init__(self, conn: Connection, channel: paramiko.Channel, line: str) -> None:
        self._conn = conn
        self._channel = channel
        self.line = line

    @property
    def alive(self) -> bool:
        """Still running, as far as this side knows (a dropped connection ends it)."""
        channel = self._channel
        return not channel.closed and not channel.exit_status_ready() and self._conn.connected

    def end(self, timeout: float = 10.0) -> int | None:
        """Close its stdin and wait (bounded) until it exits; its exit status, None if unknown.

        Waiting matters: what it held on the host is free only once it exited.
        """
        channel = self._channel
        try:
            if not channel.closed:
                channel.shutdown_write()
                if channel.status_event.wait(timeout):
                    return channel.recv_exit_status()
            return None
        except (OSError, EOFError, paramiko.SSHException):
            return None
        finally:
            channel.close()


def load_key(key_path: str | Path) -> paramiko.PKey:
    """The reconciler's client key (OpenSSH or PEM private key, unencrypted).

    Each way a key can be wrong is one line that says what to give instead: a
    missing or unreadable file, a public key (``id_ed25519.pub``) where the
    private key belongs, a key with a passphrase.
    """
    path = Path(key_path).expanduser()
    if not str(key_path):
        raise SettingsError("no SSH client key configured (setting ssh_key or --ssh-key)")
    try:
        head = path.read_bytes()[:8192]
    except FileNotFoundError as exc:
        raise SettingsError(f"SSH key {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise SettingsError(f"SSH key {path} is a directory, not a private key file") from exc
    except PermissionError as exc:
        raise SettingsError(
            f"SSH key {path}: cannot read it (permission denied); the reconciler runs as "
            "a user that must be able to read its key"
        ) from exc
    except OSError as exc:
        raise SettingsError(f"SSH key {path}: cannot read it: {exc.strerror}") from exc
    if head.lstrip().startswith((b"ssh-", b"ecdsa-", b"sk-")):
        private = path.with_suffix("") if path.suffix == ".pub" else None
        hint = f" ({private})" if private is not None and private.is_file() else ""
        raise SettingsError(
            f"SSH key {path} is a public key; give the private key{hint}: the public "
            "one goes into the hosts' authorized_keys"
        )
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException as exc:
        raise SettingsError(
            f"SSH key {path} has a passphrase; the reconciler needs a key without one "
            "(a key of its own, kept readable only by the user it runs as)"
        ) from exc
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise SettingsError(f"SSH key {path}: not a private key that can be read: {exc}") from exc


def open_connection(
    target: Target,
    *,
    pins: Sequence[paramiko.PKey],
    key_path: str | Path | None = None,
    connect_timeout: float = 10,
    retries: int = 3,
    backoff: float = 0.5,
    key: paramiko.PKey | None = None,
) -> Connection:
    """An open connection to ``target``, trusting only ``pins``."""
    if key is None:
        if key_path is None:
            raise SettingsError("no SSH client key configured (setting ssh_key or --ssh-key)")
        key = load_key(key_path)
    connection = Connection(
        target,
        pins=pins,
        key=key,
        user=target.user,
        connect_timeout=connect_timeout,
        retries=retries,
        backoff=backoff,
    )
    return connection.open()
