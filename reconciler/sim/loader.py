"""Simulated loader.efi images: the bytes of a PE file with FreeBSD's version string in them.

stand/common/newvers.sh writes ``bootprog_info``: ``FreeBSD/<arch> <what>,
Revision <r>\\n(<date> <user>@<host>)\\n``, where ``<r>`` is the first
``N.N:`` line of the loader's version file (stand/efi/loader/version:
``1.1``), ``<what>`` is ``EFI loader`` (stand/efi/loader/Makefile
NEWVERSWHAT), ``<date>`` is date(1)'s default output and the second line is
left out for a reproducible build (``-r``). The string sits in the binary's
data among other bytes; ``grep -a`` finds it. A world's loader is
``/boot/loader.efi`` (installworld puts it there); bsdinstall's bootconfig
copied it once to the ESP as ``efi/freebsd/loader.efi`` and
``efi/boot/boot<arch>.efi``, and nothing in installworld updates those.
"""

from __future__ import annotations

import time

REVISION = "1.1"  # stand/efi/loader/version
ESP_LOADERS = ("efi/freebsd/loader.efi", "efi/boot/bootx64.efi")  # below /boot/efi
WORLD_LOADER = "boot/loader.efi"
#: date(1)'s default format (FreeBSD's %+): the day of the month padded with a space.
_DATE = "%a %b %e %H:%M:%S UTC %Y"


def date(epoch: float | None = None) -> str:
    return time.strftime(_DATE, time.gmtime(epoch))


def image(built: str, builder: str, arch: str = "amd64") -> bytes:
    """A loader.efi: a PE header, code-like bytes, then the version string and more bytes."""
    info = f"FreeBSD/{arch} EFI loader, Revision {REVISION}\n"
    if built:
        info += f"({built} {builder})\n"
    filler = bytes((i * 37 + 11) % 256 for i in range(4096))
    return b"MZ\x90\x00" + filler + b"\x00" + info.encode() + b"\x00" + filler[::-1]
