"""The simulated mountd(8): which exports(5) lines it loads, and which it rejects.

usr.sbin/mountd/mountd.c, get_exportlist_one() and do_mount(), with the
kernel's vfs_hang_addrlist() (sys/kern/vfs_export.c):

- every directory of a line must be on one file system (else ``fsid
  mismatch``) and come before the options (``dirs must be first``);
- each host (address), network (``-network``/``-mask``) or the default (no
  host at all) gets one export per file system: the kernel refuses a second
  one with EPERM, mountd logs ``can't change attributes for <dir>: netcred
  already exists for given addr/mask`` and ``bad exports list line '<line>'``
  and drops the whole line (exports(5): "a host may be specified only once
  for each local file system"). ``service mountd reload`` still exits 0: the
  complaints go to syslog (/var/log/messages);
- what was loaded is what a client may mount and what ``showmount -e`` lists.

The loaded list is kept in the fleet directory (``hosts/<h>/mountd.json``,
stamped with the boot it belongs to), so clients can read it: mountd's RPC
answer. Not simulated: netgroups, ``-alldirs`` semantics, V4: lines, checks
that the directories exist.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconciler.sim import state

_OPTIONS_WITH_VALUE = ("-maproot", "-mapall", "-network", "-mask", "-sec", "-indexfile")


def logical_lines(text: str) -> list[str]:
    """exports(5) lines: comments and blank lines skipped, ``\\``-continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line.strip())
    if pending.strip():
        lines.append(pending.strip())
    return lines


def _client_keys(words: list[str], resolve: Callable[[str], str | None]) -> list[str]:
    keys = []
    for word in words:
        address = resolve(word)
        keys.append(f"host:{address}" if address else f"host:?{word}")
    return keys


def load(
    text: str,
    filesystem: Callable[[str], str],
    resolve: Callable[[str], str | None],
) -> tuple[list[dict[str, Any]], list[str]]:
    """(accepted exports, syslog messages) for an /etc/exports text.

    ``filesystem(path)`` names the server's file system holding ``path``;
    ``resolve(name)`` gives a client's address (None: unknown host).
    """
    accepted: list[dict[str, Any]] = []
    messages: list[str] = []
    taken: set[tuple[str, str]] = set()  # (file system, client key)
    for line in logical_lines(text):
        words = line.split()
        dirs: list[str] = []
        options: dict[str, str | bool] = {}
        hosts: list[str] = []
        problem = ""
        index = 0
        while index < len(words):
            word = words[index]
            if word.startswith("-"):
                name, _, inline = word.partition("=")
                if name in _OPTIONS_WITH_VALUE and not inline and index + 1 < len(words):
                    index += 1
                    inline = words[index]
                options[name] = inline or True
            elif word.startswith("/"):
                if options or hosts:
                    problem = "dirs must be first"
                    break
                dirs.append(word.rstrip("/") or "/")
            else:
                hosts.append(word)
            index += 1
        if not problem and not dirs:
            problem = "no directory"
        filesystems = {filesystem(d) for d in dirs}
        if not problem and len(filesystems) > 1:
            problem = "fsid mismatch"
        if problem:
            messages.append(f"bad exports list line '{line}': {problem}")
            continue
        fs = filesystems.pop()
        keys = _client_keys(hosts, resolve)
        network = options.get("-network")
        if isinstance(network, str):
            keys.append(f"net:{network}/{options.get('-mask', '')}")
        if not keys:
            keys = ["default"]
        if any((fs, key) in taken for key in keys):
            messages.append(
                f"can't change attributes for {dirs[0]}: netcred already exists for given addr/mask"
            )
            messages.append(f"bad exports list line '{line}'")
            continue
        taken.update((fs, key) for key in keys)
        accepted.append(
            {
                "dirs": dirs,
                "fs": fs,
                "hosts": hosts,
                "addresses": [k[5:] for k in keys if k.startswith("host:")],
                "network": network if isinstance(network, str) else None,
                "mask": options.get("-mask") if isinstance(options.get("-mask"), str) else None,
                "ro": "-ro" in options or "-o" in options,
            }
        )
    return accepted, messages


def allows(export: Mapping[str, Any], client: str) -> bool:
    """Whether ``client`` (an address) may mount from this loaded export."""
    if not export["addresses"] and not export["network"]:
        return True  # the default entry: every host
    if client in export["addresses"]:
        return True
    network = export.get("network")
    if network:
        mask = export.get("mask")
        try:
            net = ipaddress.ip_network(f"{network}/{mask}" if mask else network, strict=False)
            return ipaddress.ip_address(client) in net
        except ValueError:
            return False
    return False


def covering(exports: list[dict[str, Any]], path: str, client: str) -> dict[str, Any] | None:
    """The loaded export that lets ``client`` mount ``path`` (mountd's MNT check)."""
    for export in exports:
        if path in export["dirs"] and allows(export, client):
            return export
    return None


# -- the loaded list, kept where clients can read it -------------------------
def path_of(host_dir: Path) -> Path:
    return host_dir / "mountd.json"


def save(host_dir: Path, exports: list[dict[str, Any]], booted_at: Any) -> None:
    state.write_json(path_of(host_dir), {"booted_at": booted_at, "exports": exports})


def clear(host_dir: Path) -> None:
    path_of(host_dir).unlink(missing_ok=True)


def loaded(host_dir: Path) -> list[dict[str, Any]] | None:
    """The server's loaded exports, or None when its mountd does not run (this boot)."""
    data = state.read_json(path_of(host_dir))
    booted = state.load(host_dir).get("booted_at")
    if not data or data.get("booted_at") != booted:
        return None
    exports = data.get("exports")
    return list(exports) if isinstance(exports, list) else []


def syslog(messages_file: Path, host: str, lines: list[str]) -> None:
    """Append mountd's complaints to /var/log/messages in syslogd's format."""
    if not lines:
        return
    stamp = time.strftime("%b %e %H:%M:%S")
    messages_file.parent.mkdir(parents=True, exist_ok=True)
    with messages_file.open("a", encoding="utf-8") as log:
        for line in lines:
            log.write(f"{stamp} {host} mountd[{os.getpid()}]: {line}\n")


def filesystem_of(host_state: Mapping[str, Any], obj_in_be: bool, path: str) -> str:
    """The server's file system (as ``mount -p`` names it) that holds ``path``.

    The simulated layout: a UFS host has one, ``/dev/ada0p2``; a ZFS host has
    ``zroot/usr/src``, ``zroot/usr/obj`` (unless /usr/obj lives in the boot
    environment), ``zroot/usr/ports`` (bsdinstall's zfsboot makes it a dataset)
    and the booted BE's ``zroot/ROOT/<BE>`` for everything else.
    """
    if host_state.get("ufs"):
        return "/dev/ada0p2"

    def under(top: str) -> bool:
        return path == top or path.startswith(top + "/")

    if under("/usr/src"):
        return "zroot/usr/src"
    if under("/usr/obj") and not obj_in_be:
        return "zroot/usr/obj"
    if under("/usr/ports"):
        return "zroot/usr/ports"
    return f"zroot/ROOT/{host_state.get('booted_be') or 'default'}"


def reload(host_dir: Path, be_root: Path, name: str, addresses: Mapping[str, str]) -> list[str]:
    """mountd's get_exportlist(): load the booted BE's /etc/exports, log what it refuses.

    ``be_root`` is the booted BE's directory (its etc/exports, var/log/messages);
    ``addresses`` maps host names to addresses. Returns the syslog messages.
    """
    st = state.load(host_dir)
    try:
        text = (be_root / "etc" / "exports").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""  # mountd: "can't open /etc/exports" is a warning, not an error

    def resolve(word: str) -> str | None:
        if word in addresses:
            return addresses[word]
        try:
            return str(ipaddress.ip_address(word))
        except ValueError:
            return None

    obj_in_be = bool(st.get("obj_in_be"))
    accepted, messages = load(text, lambda p: filesystem_of(st, obj_in_be, p), resolve)
    save(host_dir, accepted, st.get("booted_at") or 0.0)
    syslog(be_root / "var" / "log" / "messages", name, messages)
    return messages
