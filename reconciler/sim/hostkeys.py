"""Deterministic SSH host keys for simulated hosts.

A simulated host's Ed25519 key is derived from its name, so the
``known_hosts`` committed in ``example-repo`` pins the keys that
``reconciler sim up`` will present, on every machine, without shipping private
keys. Anyone can derive them: they identify simulated hosts only and must never
be used on a real machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_DOMAIN = b"reconciler simulated host key v1:"


def _private_key(name: str) -> Ed25519PrivateKey:
    seed = hashlib.sha256(_DOMAIN + name.encode("utf-8")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_openssh(name: str) -> bytes:
    """The host's private key in OpenSSH format, for sshd's HostKey file."""
    return _private_key(name).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def public_key_line(name: str) -> str:
    """``ssh-ed25519 AAAA...`` for the host, as known_hosts wants after the host patterns."""
    public = _private_key(name).public_key()
    return public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def known_hosts_line(name: str, address: str, port: int = 22) -> str:
    """A known_hosts line naming the host by name and by address (OpenSSH format)."""
    where = address if port == 22 else f"[{address}]:{port}"
    return f"{name},{where} {public_key_line(name)} simulated:{name}"


def known_hosts_text(hosts: Iterable[tuple[str, str, int]]) -> str:
    """known_hosts for a simulated fleet: the derived key of every (name, address, port)."""
    lines = [
        "# Host keys of the simulated fleet (reconciler.sim.hostkeys);",
        "# anyone can derive them: never use them on a real host.",
        *(known_hosts_line(name, address, port) for name, address, port in hosts),
    ]
    return "\n".join(lines) + "\n"
