"""Pinned SSH host keys: parse the repo's ``known_hosts`` (OpenSSH format) and match hosts.

A host is matched the way ssh(1) would when connecting to it, by its name or
by its address: plain patterns for port 22, ``[host]:port`` otherwise, comma
lists, ``*``/``?`` wildcards, ``!`` negation, and hashed entries
(``|1|salt|hmac``, HMAC-SHA1 of the host string keyed with the salt, as
``ssh-keygen -H`` writes them). ``@cert-authority`` and ``@revoked`` lines pin
no key and are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.config.model import Host
from reconciler.errors import Problem

KNOWN_HOSTS = "known_hosts"


@dataclass(frozen=True)
class Entry:
    line: int
    patterns: str
    keytype: str
    key: str

    @property
    def pin(self) -> str:
        return f"{self.keytype} {self.key}"


def parse(text: str) -> tuple[list[Entry], list[Problem]]:
    """Entries of a known_hosts text and a problem for every malformed line."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            continue  # markers (@cert-authority, @revoked) pin no key of their own
        fields = line.split()
        if len(fields) < 3:
            problems.append(
                Problem(
                    KNOWN_HOSTS,
                    number,
                    1,
                    "malformed known_hosts line: expected 'HOSTS KEYTYPE BASE64-KEY [COMMENT]'",
                    "generate lines with ssh-keyscan HOST",
                )
            )
            continue
        patterns, keytype, key = fields[:3]
        try:
            blob = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        if len(blob) < 4 or blob[4 : 4 + len(keytype)] != keytype.encode():
            column = raw.index(key) + 1
            problems.append(
                Problem(
                    KNOWN_HOSTS,
                    number,
                    column,
                    f"the key is not a base64 {keytype} public key",
                    "copy the line from ssh-keyscan output unchanged",
                )
            )
            continue
        entries.append(Entry(number, patterns, keytype, key))
    return entries, problems


def _hashed_match(pattern: str, candidate: str) -> bool:
    parts = pattern.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        expected = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    digest = hmac.new(salt, candidate.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(digest, expected)


def _wildcard(pattern: str) -> re.Pattern[str]:
    # ssh patterns know only * and ?; brackets are literal ([host]:port), unlike fnmatch.
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern.lower())
    return re.compile("".join(parts), re.DOTALL)


def _matches(patterns: str, candidates: Iterable[str]) -> bool:
    names = list(candidates)
    if patterns.startswith("|"):
        return any(_hashed_match(patterns, name) for name in names)
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        bare = pattern[1:] if negated else pattern
        if any(_wildcard(bare).fullmatch(name.lower()) for name in names):
            if negated:
                return False  # as in ssh: a negated match overrides any positive one
            matched = True
    return matched


def host_strings(name: str, address: str, port: int = 22) -> tuple[str, ...]:
    """How ssh names a host in known_hosts: ``host`` on port 22, ``[host]:port`` otherwise."""
    if port == 22:
        return (name, address)
    return (f"[{name}]:{port}", f"[{address}]:{port}")


def lookup(known_hosts_text: str, host: Host) -> list[str]:
    """The ``keytype base64`` pins that match ``host`` by its name or its address."""
    entries, _ = parse(known_hosts_text)
    candidates = host_strings(host.name, host.address, host.port)
    pins: list[str] = []
    for entry in entries:
        if _matches(entry.patterns, candidates) and entry.pin not in pins:
            pins.append(entry.pin)
    return pins
