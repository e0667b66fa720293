"""Checks of the observability settings (status server, webhooks, command hook).

Pure: the raw TOML values in, the normalised values out (lists become
tuples), or a :class:`~reconciler.errors.SettingsError` naming the file, the
key and what to write instead. Kept apart from ``settings.py`` so that file
stays a plain table of keys.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reconciler.errors import SettingsError

#: Most tries a notification gets per target (the backoff doubles, capped at a minute).
MAX_ATTEMPTS = 100
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8440"``, ``"[::1]:8440"``, ``"localhost:8440"`` -> (host, port).

    Port 0 asks the kernel for a free port (the daemon logs the one it got).
    Raises ValueError with the reason.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:8440")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("an IPv6 address goes in brackets: [::1]:8440")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets: [::1]:8440")
    else:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not _HOSTNAME.match(host):
                raise ValueError(f"{host!r} is neither an IP address nor a host name") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} is not a number from 0 to 65535")
    return host, int(port_text)


def commit_link(template: str, commit: str) -> str | None:
    """The link to a ledger commit, or None without a template."""
    return template.replace("{commit}", commit) if template else None


def _check_url(path: Path, key: str, url: object) -> str:
    if not isinstance(url, str):
        raise SettingsError(f"{path}: every entry of {key!r} must be a string, not {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{path}: {key!r}: {url!r} is not an http:// or https:// URL with a host"
        )
    return url


def _check_template(path: Path, template: str) -> None:
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    if fields != ["commit"]:
        raise SettingsError(
            f"{path}: commit_url must contain {{commit}} exactly once and no other field, "
            "for example https://git.example.org/ops/fleet-config/commit/{commit}"
        )
    _check_url(path, "commit_url", template.replace("{commit}", "0" * 40))


def check_observability(path: Path, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the observability keys present in ``values``; the normalised ones."""
    out: dict[str, Any] = {}
    listen = values.get("status_listen", "")
    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise SettingsError(f"{path}: status_listen {listen!r}: {exc}") from None
    if values.get("commit_url"):
        _check_template(path, values["commit_url"])
    if "webhooks" in values:
        out["webhooks"] = tuple(_check_url(path, "webhooks", u) for u in values["webhooks"])
        if out["webhooks"] and not values.get("webhook_secret"):
            raise SettingsError(
                f"{path}: webhooks need webhook_secret: receivers check the "
                "X-Reconciler-Signature header (HMAC-SHA256 of the body) with it"
            )
    if "notify_command" in values:
        argv = values["notify_command"]
        if not all(isinstance(a, str) for a in argv):
            raise SettingsError(f"{path}: notify_command must be a list of strings")
        if argv and not Path(argv[0]).is_absolute():
            raise SettingsError(
                f"{path}: notify_command[0] must be an absolute path (a service's PATH "
                f"is not yours), not {argv[0]!r}"
            )
        out["notify_command"] = tuple(argv)
    attempts = values.get("notify_attempts", 1)
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise SettingsError(f"{path}: notify_attempts must be from 1 to {MAX_ATTEMPTS}")
    if values.get("notify_timeout", 1) <= 0:
        raise SettingsError(f"{path}: notify_timeout must be more than 0 seconds")
    return out
