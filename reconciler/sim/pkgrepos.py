"""Where the simulated pkg finds its repositories, and what -c and -r change about it.

pkg.conf(5) repository files are UCL; the simulator reads the shape they
have in practice (``Name: { key: value, ... }``, values quoted or bare,
``#`` comments). REPOS_DIR defaults to ``/etc/pkg/`` and
``/usr/local/etc/pkg/repos/`` (libpkg/pkg_config.c); later files override
keys of a repository named earlier, so ``FreeBSD: { enabled: no }`` in
the second directory turns off the stock ``/etc/pkg/FreeBSD.conf``.
``signature_type: "pubkey"`` with ``pubkey: PATH`` makes pkg check the
catalogue's signature with that key (pkgsign.py).

The three ways pkg(8) meets a root (src/main.c, libpkg/pkg_config.c):

- plain: everything on the running system;
- ``-c DIR``: chroot(2) first, so the repository files, the ``file://``
  repository path, the database and the scripts are all inside DIR;
- ``-r DIR``: a relocated install: pkg.conf, the database
  (``PKG_DBDIR`` /var/db/pkg) and the ABI (``/usr/bin/uname``) come from DIR,
  but REPOS_DIR is an absolute list opened as is, so the *running
  system's* repository files and paths are used, and scripts run on the
  running system with ``PKG_ROOTDIR=DIR`` (libpkg/scripts.c).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPOS_DIRS = ("etc/pkg", "usr/local/etc/pkg/repos")
_NAME = re.compile(r"([A-Za-z0-9_.-]+)\s*:\s*\{")
_PAIR = re.compile(r"([A-Za-z_]+)\s*[:=]\s*(\"[^\"]*\"|[^,\n]+)")


@dataclass(frozen=True)
class Repo:
    name: str
    url: str
    enabled: bool
    priority: int
    signature_type: str
    pubkey: str = ""  # the key file of signature_type "pubkey" (pkg.conf(5) PUBKEY)

    @property
    def local(self) -> str | None:
        """The path of a ``file://`` repository, None for a network one."""
        return self.url[len("file://") :] if self.url.startswith("file://") else None


def _value(raw: str) -> str:
    raw = raw.strip().rstrip(",").strip()
    return raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw


def _truthy(value: str) -> bool:
    return value.lower() in ("yes", "true", "on", "1")


def _blocks(text: str) -> list[tuple[str, str]]:
    """(name, body) of each top-level ``name: { ... }``; braces inside quotes do not count."""
    found = []
    pos = 0
    while (match := _NAME.search(text, pos)) is not None:
        depth, quoted, i = 1, False, match.end()
        while i < len(text) and depth:
            char = text[i]
            if char == '"':
                quoted = not quoted
            elif not quoted and char in "{}":
                depth += 1 if char == "{" else -1
            i += 1
        found.append((match.group(1), text[match.end() : i - 1]))
        pos = i
    return found


def parse(text: str) -> dict[str, dict[str, str]]:
    """Repository name -> its keys, from one repository file."""
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    result: dict[str, dict[str, str]] = {}
    for name, body in _blocks(text):
        result[name] = {k.lower(): _value(v) for k, v in _PAIR.findall(body)}
    return result


def load(conf_root: Path) -> list[Repo]:
    """The repositories configured under ``conf_root`` (``/`` or a chroot), enabled or not."""
    merged: dict[str, dict[str, str]] = {}
    for rel in REPOS_DIRS:
        directory = conf_root / rel
        if not directory.is_dir():
            continue
        for conf in sorted(directory.glob("*.conf")):
            for name, keys in parse(conf.read_text(encoding="utf-8", errors="replace")).items():
                merged.setdefault(name, {}).update(keys)
    repos = []
    for name, keys in merged.items():
        try:
            priority = int(keys.get("priority", "0"))
        except ValueError:
            priority = 0
        repos.append(
            Repo(
                name=name,
                url=keys.get("url", ""),
                enabled=_truthy(keys.get("enabled", "yes")),
                priority=priority,
                signature_type=keys.get("signature_type", "none").lower(),
                pubkey=keys.get("pubkey", ""),
            )
        )
    return sorted(repos, key=lambda r: (-r.priority, r.name))
