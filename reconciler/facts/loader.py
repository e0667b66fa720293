"""The boot loaders a host has: the world's /boot/loader.efi and the copies on the ESP.

stand/common/newvers.sh builds every loader's ``bootprog_info``:
``FreeBSD/<arch> EFI loader, Revision <r>`` then, unless built reproducibly,
``(<date> <user>@<host>)`` on the next line, where ``<r>`` is the first
``N.N:`` line of stand/efi/loader/version and ``<date>`` is date(1)'s
output. The string sits in the binary's data; ``grep -a -o`` picks both lines
out (the second starts a line of its own, after the embedded newline).

bsdinstall's bootconfig (usr.sbin/bsdinstall/scripts/bootconfig) copies
/boot/loader.efi once onto the EFI system partition (mounted on /boot/efi)
as ``efi/freebsd/loader.efi`` and, when absent, the removable-media
fallback ``efi/boot/boot<x64|aa64|riscv64>.efi``. installworld writes
/boot/loader.efi into the new world and never touches the ESP, so the ESP's
loader falls behind the world. That matters here because ``bectl activate
-t`` is read by the loader (stand/efi/loader/main.c probe_zfs_currdev(),
zfs_get_bootonce() of stand/libsa/zfs/zfsimpl.c): a loader from before that
code boots the permanent BE and ignores the one-shot.

The Revision has been ``1.1`` for years, so dates order loaders; a
reproducible build without one is compared by Revision only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe
from reconciler.transport.command import sh

WORLD_LOADER = "/boot/loader.efi"
ESP = "/boot/efi"
#: bsdinstall's ARCHBOOTNAME per TARGET.
_BOOTNAME = {"amd64": "x64", "arm64": "aa64", "riscv": "riscv64", "i386": "ia32", "arm": "arm"}

_SCRIPT = (
    'for f in "$@"; do [ -f "$f" ] || continue; printf "== %s\\n" "$f"; '
    "grep -a -o -e 'FreeBSD/[A-Za-z0-9_]* [A-Za-z ]*loader, Revision [0-9.]*' "
    "-e '^([A-Z][a-z][a-z] [^)]*)' \"$f\" | head -n 8; done"
)


def esp_loaders(arch: str) -> tuple[str, ...]:
    return (
        f"{ESP}/efi/freebsd/loader.efi",
        f"{ESP}/efi/boot/boot{_BOOTNAME.get(arch, arch)}.efi",
    )


def probes(arch: str) -> tuple[Probe, ...]:
    return (Probe("loaders", tuple(sh(_SCRIPT, WORLD_LOADER, *esp_loaders(arch)))),)


_MONTHS = {
    month: number
    for number, month in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_REVISION = re.compile(
    r"FreeBSD/(?P<arch>[A-Za-z0-9_]+) .*?loader, Revision (?P<rev>\d+(?:\.\d+)*)"
)
_DATE = (
    r"[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<time>\d{2}:\d{2}:\d{2}) \S+ (?P<year>\d{4})"
)
_BUILT = re.compile(rf"^\((?P<date>{_DATE}) (?P<who>[^)\s]+)\)$")


@dataclass(frozen=True)
class LoaderVersion:
    path: str
    revision: str | None  # e.g. "1.1"
    built: str | None = None  # date(1)'s words, e.g. "Tue Jun  4 12:00:00 UTC 2024"
    builder: str | None = None  # user@host

    @property
    def built_key(self) -> tuple[int, int, int, str] | None:
        """(year, month, day, HH:MM:SS) for ordering; the time zone is ignored (hours at most)."""
        match = re.fullmatch(_DATE, self.built) if self.built else None
        if match is None or match["mon"] not in _MONTHS:
            return None
        return (int(match["year"]), _MONTHS[match["mon"]], int(match["day"]), match["time"])

    @property
    def revision_key(self) -> tuple[int, ...] | None:
        return tuple(int(p) for p in self.revision.split(".")) if self.revision else None


@dataclass(frozen=True)
class Loaders:
    world: LoaderVersion | None  # /boot/loader.efi of the booted world
    esp: tuple[LoaderVersion, ...] = ()  # the copies found on the ESP


def older(a: LoaderVersion, b: LoaderVersion) -> bool | None:
    """Whether loader ``a`` is older than ``b`` (None: they cannot be ordered)."""
    ra, rb = a.revision_key, b.revision_key
    if ra is not None and rb is not None and ra != rb:
        return ra < rb
    da, db = a.built_key, b.built_key
    if da is None or db is None:
        return None  # same Revision, and a reproducible build carries no date
    return da < db


def parse_loaders(text: str) -> dict[str, LoaderVersion]:
    """``== PATH`` sections of grep matches -> path -> its version."""
    found: dict[str, LoaderVersion] = {}
    path: str | None = None
    revision = built = builder = None
    for line in [*text.splitlines(), "== "]:
        if line.startswith("== "):
            if path is not None and revision is not None:
                found[path] = LoaderVersion(path, revision, built, builder)
            path, revision, built, builder = line[3:].strip() or None, None, None, None
            continue
        if revision is None:
            match = _REVISION.search(line)
            if match:
                revision = match["rev"]
            continue
        if built is None:
            stamp = _BUILT.match(line.strip())
            if stamp:
                built, builder = stamp["date"], stamp["who"]
    return found


def parse(outputs: Mapping[str, Output], arch: str) -> Loaders:
    found = parse_loaders(outputs["loaders"].stdout)
    return Loaders(
        world=found.get(WORLD_LOADER),
        esp=tuple(found[p] for p in esp_loaders(arch) if p in found),
    )
