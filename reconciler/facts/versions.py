"""What a host runs: kernel and userland versions, and the kernel's source.

``freebsd-version -kru`` prints installed kernel, running kernel and userland
on three lines in that order (``bin/freebsd-version/freebsd-version.sh.in``);
none carries a git hash. ``uname -v`` does: ``newvers.sh`` writes
``[<branch>-]n<count>-<hash12>[-dirty]`` into the version string, the branch
left out on a detached HEAD. ``uname -i`` is the kernel ident (KERNCONF),
``-K``/``-U`` the kernel and userland ``__FreeBSD_version``, ``-m`` the machine.

One ``uname -vmiKU`` call reads them all: uname(1) prints its fields in a
fixed order (s n r v m p i K U, ``usr.bin/uname/uname.c``) separated by
spaces, so machine, ident, K and U are the last four words and the version
(which contains spaces) is everything before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe

PROBES = (
    Probe("freebsd-version", ("freebsd-version", "-kru")),
    Probe("uname", ("uname", "-vmiKU")),
)

_GIT = re.compile(
    r"(?:^|\s)(?:(?P<branch>\S+)-)?n(?P<count>\d+)-(?P<hash>[0-9a-f]{12})(?P<dirty>-dirty)?(?=[:\s]|$)"
)


@dataclass(frozen=True)
class KernelSource:
    """The git part of ``uname -v``."""

    revision12: str
    count: int
    branch: str | None = None  # None: built from a detached HEAD
    dirty: bool = False


@dataclass(frozen=True)
class Versions:
    installed_kernel: str | None  # freebsd-version -k
    running_kernel: str | None  # freebsd-version -r
    userland: str | None  # freebsd-version -u
    ident: str | None  # uname -i
    kernel_version: str  # uname -v, one line
    source: KernelSource | None  # None: no git info in uname -v
    kernel_osreldate: int | None  # uname -K
    userland_osreldate: int | None  # uname -U
    machine: str | None  # uname -m

    @property
    def revision12(self) -> str | None:
        return self.source.revision12 if self.source else None


def parse_uname_v(text: str) -> KernelSource | None:
    match = _GIT.search(" ".join(text.split()))
    if match is None:
        return None
    return KernelSource(
        revision12=match["hash"],
        count=int(match["count"]),
        branch=match["branch"],
        dirty=bool(match["dirty"]),
    )


def parse_freebsd_version(text: str) -> tuple[str | None, str | None, str | None]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    padded = [*lines[:3], None, None, None]
    return padded[0], padded[1], padded[2]


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def parse_uname(text: str) -> tuple[str, str | None, str | None, int | None, int | None]:
    """``uname -vmiKU`` -> (version, machine, ident, K, U)."""
    words = text.split()
    if len(words) < 5:
        return " ".join(words), None, None, None, None
    version = " ".join(words[:-4])
    machine, ident, kernel, user = words[-4:]
    return version, machine, ident, _int(kernel), _int(user)


def parse(outputs: dict[str, Output]) -> Versions:
    fv = outputs["freebsd-version"]
    kernel, running, userland = parse_freebsd_version(fv.stdout) if fv.ok else (None, None, None)
    uname = outputs["uname"]
    version, machine, ident, osreldate, userdate = parse_uname(uname.stdout if uname.ok else "")
    return Versions(
        installed_kernel=kernel,
        running_kernel=running,
        userland=userland,
        ident=ident,
        kernel_version=version,
        source=parse_uname_v(version),
        kernel_osreldate=osreldate,
        userland_osreldate=userdate,
        machine=machine,
    )
