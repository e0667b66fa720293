"""known_hosts matching the way ssh does it: names, addresses, ports, lists, wildcards, hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from reconciler.config.knownhosts import lookup, parse
from reconciler.config.model import Host
from reconciler.sim.hostkeys import public_key_line

KEY_A = public_key_line("a")
KEY_B = public_key_line("b")


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def host(name: str = "web1", address: str = "192.0.2.21", port: int = 22) -> Host:
    return Host(name, "lab", address, "GENERIC", port=port)


@pytest.mark.parametrize(
    "patterns",
    [
        "web1",
        "192.0.2.21",
        "other,web1",
        "WEB1",  # host names compare case-insensitively
        "web*",
        "192.0.2.2?",
        hashed("web1"),
        hashed("192.0.2.21"),
    ],
)
def test_matches_port_22(patterns: str) -> None:
    assert lookup(f"{patterns} {KEY_A}\n", host()) == [KEY_A]


@pytest.mark.parametrize(
    "patterns",
    [
        "web2",
        "192.0.2.210",
        "[web1]:2222",
        "*,!web1",
        "web1,!192.0.2.21",
        hashed("web2"),
        "|1|bad|entry",
    ],
)
def test_does_not_match_port_22(patterns: str) -> None:
    assert lookup(f"{patterns} {KEY_A}\n", host()) == []


def test_other_port_needs_brackets() -> None:
    target = host(port=2222)
    assert lookup(f"web1 {KEY_A}\n", target) == []
    assert lookup(f"[web1]:2222 {KEY_A}\n", target) == [KEY_A]
    assert lookup(f"[192.0.2.21]:2222 {KEY_A}\n", target) == [KEY_A]
    assert lookup(f"[192.0.2.21]:22222 {KEY_A}\n", target) == []
    assert lookup(f"{hashed('[web1]:2222')} {KEY_A}\n", target) == [KEY_A]


def test_every_key_of_the_host_once_comments_and_markers_skipped() -> None:
    text = (
        "# comment\n\n"
        f"web1 {KEY_A} first\n"
        f"192.0.2.21 {KEY_A}\n"
        f"@cert-authority * {KEY_B}\n"
        f"@revoked web1 {KEY_B}\n"
        f"web1,192.0.2.21 {KEY_B}\n"
    )
    assert lookup(text, host()) == [KEY_A, KEY_B]


def test_ipv6_address() -> None:
    target = host(address="2001:db8::21", port=2222)
    assert lookup(f"[2001:db8::21]:2222 {KEY_A}\n", target) == [KEY_A]


def test_parse_reports_malformed_lines() -> None:
    wrong_type = KEY_A.replace("ssh-ed25519", "ssh-rsa")
    text = f"web1 {KEY_A}\nweb2 ssh-ed25519\nweb3 ssh-ed25519 !!notbase64\nweb4 {wrong_type}\n"
    entries, problems = parse(text)
    assert [e.line for e in entries] == [1]
    assert [(p.path, p.line, p.column) for p in problems] == [
        ("known_hosts", 2, 1),
        ("known_hosts", 3, 18),
        ("known_hosts", 4, 14),
    ]
    assert problems[1].message == "the key is not a base64 ssh-ed25519 public key"
