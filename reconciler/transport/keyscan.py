"""Read the host key a host offers, without logging in (what ``ssh-keyscan`` does).

For ``reconciler init``: nothing read here is trusted. The caller shows the
fingerprint to a person (or compares it with ``--accept-fingerprint``) before
pinning the key; a :class:`~reconciler.transport.ssh.Connection` pinned to it
then refuses any other key, so a key swapped between the scan and the login is
caught.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import paramiko

from reconciler.transport import failures
from reconciler.transport.ssh import _transport, fingerprint

#: How ssh-keygen -l names a key type, after the fingerprint: ``256 SHA256:... (ED25519)``.
_KEY_LABELS = {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA", "ssh-dss": "DSA"}


def key_label(keytype: str) -> str:
    """``ED25519``, ``ECDSA``, ``RSA``: the name ssh-keygen -l and ssh's prompts use."""
    if keytype.startswith("ecdsa-"):
        return "ECDSA"
    return _KEY_LABELS.get(keytype, keytype.upper())


@dataclass(frozen=True)
class ScannedKey:
    """A host key as a host offered it: for a known_hosts line and for a person to check."""

    keytype: str  # ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa ...
    base64: str
    fingerprint: str  # SHA256:...
    bits: int

    @property
    def label(self) -> str:
        return key_label(self.keytype)

    @property
    def keygen_line(self) -> str:
        """As ``ssh-keygen -l`` prints it, without the comment: ``256 SHA256:... (ED25519)``."""
        return f"{self.bits} {self.fingerprint} ({self.label})"


def scan_host_key(
    address: str, port: int = 22, *, name: str = "", timeout: float = 10.0
) -> ScannedKey:
    """The host key ``address:port`` offers, read without logging in (ssh-keyscan's job).

    Nothing is trusted here: the caller shows the fingerprint to a person, or
    compares it with one given on the command line, before pinning the key; a
    later :class:`Connection` pinned to it refuses any other.
    """
    where = f"{address}:{port}"
    who = name or address
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except (OSError, UnicodeError) as exc:
        raise failures.unreachable(who, where, exc, timeout) from exc
    transport: paramiko.Transport | None = None
    try:
        transport = _transport(sock)
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (OSError, EOFError, UnicodeError, paramiko.SSHException) as exc:
        raise failures.unreachable(who, where, exc, timeout) from exc
    finally:
        if transport is not None:
            transport.close()
        sock.close()
    return ScannedKey(key.get_name(), key.get_base64(), fingerprint(key), key.get_bits())
