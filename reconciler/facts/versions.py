"""What a host runs: kernel and userland versions, and the kernel's source.

``freebsd-version -kru`` prints installed kernel, running kernel and userland
on three lines in that order (``bin/freebsd-version/freebsd-version.sh.in``);
none carries a git hash. ``uname -v`` may: ``sys/conf/newvers.sh`` puts one
VCS word into the version string, built as

* the hash from ``git rev-parse --verify --short HEAD``: git's default
  abbreviation, at least 7 digits and as many as the repository needs to be
  unambiguous (12 on FreeBSD's src.git today, but neither fixed nor promised);
* ``n<count>-`` before it (``git rev-list --first-parent --count``) only when
  ``git rev-parse --is-shallow-repository`` says false;
* ``<branch>-`` before that unless HEAD is detached (it is after the
  reconciler's ``git checkout --detach``);
* ``-dirty`` after it when ``git diff`` finds local changes.

git is looked for only in ``/usr/bin`` and ``/usr/local/bin`` (base has none),
so a build host without the git package embeds no VCS word at all.
``newvers.sh -R`` (kern.post.mk, when WITH_REPRODUCIBLE_BUILD) drops the
``#N``, the date and ``user@host:objdir`` unless the tree is modified:
``FreeBSD 14.2-STABLE stable/14-n269870-5a3e9b1c2d4f GENERIC``; otherwise the
string is ``FreeBSD 14.2-STABLE #0 <vcs>: <date>  <user>@<host>:<objdir>``.
Both forms are read here; :func:`revision_matches` compares an abbreviation
of any length with a full revision.

``uname -i`` is the kernel ident (KERNCONF), ``-K``/``-U`` the kernel and
userland ``__FreeBSD_version``, ``-m`` the machine. One ``uname -vmiKU`` call
reads them all: uname(1) prints its fields in a fixed order (s n r v m p i K U,
``usr.bin/uname/uname.c``) separated by spaces, so machine, ident, K and U are
the last four words and the version (which contains spaces) is everything
before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe

PROBES = (
    Probe("freebsd-version", ("freebsd-version", "-kru")),
    Probe("uname", ("uname", "-vmiKU")),
)

_HASH = r"(?P<hash>[0-9a-f]{7,40})(?P<dirty>-dirty)?"
# newvers.sh's VCS word, most specific first: a count binds to the hash, so
# "n269870-5a3e9b1c2d4f" is a detached HEAD, not a branch named "n269870".
_VCS_WORDS = (
    re.compile(rf"^n(?P<count>\d+)-{_HASH}$"),
    re.compile(rf"^(?P<branch>.+)-n(?P<count>\d+)-{_HASH}$"),
    re.compile(rf"^{_HASH}$"),
    re.compile(rf"^(?P<branch>.+)-{_HASH}$"),
)
_SERIAL = re.compile(r"^#\d+(?P<colon>:?)$")


@dataclass(frozen=True)
class KernelSource:
    """The git part of ``uname -v``."""

    #: The hash as newvers.sh printed it: git's ``--short`` abbreviation (7 or
    #: more hex digits; 12 on FreeBSD's src.git). Named for history: the
    #: ledger's recorded facts use this key. Compare with :func:`revision_matches`.
    revision12: str
    count: int | None  # None: built from a shallow clone
    branch: str | None = None  # None: built from a detached HEAD
    dirty: bool = False

    @property
    def abbrev(self) -> str:
        return self.revision12


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
    #: The kernel's build directory from uname -v (``user@host:<objdir>``, the
    #: objdir of buildkernel, which names the reconciler's per-build prefix);
    #: None for a reproducible build of an unmodified tree, which omits it.
    kernel_build_path: str | None = None

    @property
    def vcs_known(self) -> bool:
        """Whether uname -v names the git revision the running kernel was built from."""
        return self.source is not None

    @property
    def abbrev(self) -> str | None:
        """The abbreviated hash in uname -v (any length from 7), or None."""
        return self.source.revision12 if self.source else None

    @property
    def revision12(self) -> str | None:
        """Kept for callers written when the hash was assumed to be 12 digits: the abbreviation."""
        return self.abbrev


def revision_matches(abbrev: str | None, full40: str) -> bool:
    """Pure: whether the abbreviated hash of uname -v names the full revision ``full40``.

    git abbreviates by prefix, so any abbreviation of 7 or more digits that
    starts ``full40`` names it (a shorter one is not what newvers.sh prints).
    """
    if not abbrev or len(abbrev) < 7 or not re.fullmatch(r"[0-9a-fA-F]+", abbrev):
        return False
    return full40.lower().startswith(abbrev.lower())


def _vcs_word(word: str) -> KernelSource | None:
    for pattern in _VCS_WORDS:
        match = pattern.match(word)
        if match is None:
            continue
        groups = match.groupdict()
        count = groups.get("count")
        return KernelSource(
            revision12=match["hash"],
            count=int(count) if count is not None else None,
            branch=groups.get("branch"),
            dirty=bool(match["dirty"]),
        )
    return None


def _words_after_release(text: str) -> tuple[list[str], str | None]:
    """The words newvers.sh put between the release and the date or ident, and the objdir.

    ``FreeBSD 14.2-STABLE #0 <words>: <date> <user>@<host>:<objdir>`` or, built
    reproducibly, ``FreeBSD 14.2-STABLE <words> <ident>``.
    """
    words = text.split()
    rest = words[2:]
    if not rest:
        return [], None
    serial = _SERIAL.match(rest[0])
    if serial is None:
        return rest[:-1], None  # reproducible: the last word is the ident
    last = rest[-1]
    path = last.split(":", 1)[1] if "@" in last and ":" in last else None
    if serial["colon"]:
        return [], path
    found = []
    for word in rest[1:]:
        if word.endswith(":"):
            found.append(word[:-1])
            return found, path
        found.append(word)
    return [], path


def parse_uname_v(text: str) -> KernelSource | None:
    """The git part of a ``uname -v`` string, whatever form newvers.sh gave it."""
    words, _ = _words_after_release(text)
    for word in words:
        source = _vcs_word(word)
        if source is not None:
            return source
    return None


def kernel_build_path(text: str) -> str | None:
    """The ``<objdir>`` of ``user@host:<objdir>`` in uname -v (None when not printed)."""
    return _words_after_release(text)[1]


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
        kernel_build_path=kernel_build_path(version),
    )
