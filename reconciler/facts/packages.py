"""Installed packages: ``pkg query`` of every host of a set that lists packages.

pkg-query(8) (src/query.c): ``%o`` origin, ``%n`` name, ``%v`` version,
``%a`` automatic (1: installed as a dependency), ``%R`` the repository it
came from (``unknown-repository`` for ``pkg add``); ``\\t`` in the format is
a tab. Flavors are the ``flavor`` annotation, read with the multiline
``%At``/``%Av`` (one line per annotation). A host without pkg(8) answers
through the pkg(7) bootstrapper, which with stdin not a tty refuses to
bootstrap and exits 1 (usr.sbin/pkg/pkg.c): ``pkg_present=False``, nothing
installed. pkg(8) without a database prints "No packages installed" on
stderr and exits 0.

What the host's repository offers: ``pkg rquery -U -r reconciler`` (src/rquery.c:
the same format keys for the catalogue's packages; ``-U`` reads the local copy
of the catalogue that the last install updated, without fetching: a probe
changes nothing). A listed package whose installed version differs from the
offered one was changed by hand (drift, reconciler.plan.packages).

A host of a set that lists no packages is asked for the record alone
(:data:`MARKER_PROBES`): what the reconciler installed there before the
set's ``packages:`` block was dropped is what it removes.

Also read: the reconciler's record of what it installed
(``/var/db/reconciler/packages``: ``pkgset=<id>``, ``packages=a/b c/d@f``,
``installed=<when>``; remote.PKG_MARKER) and the repository file it writes
(``/usr/local/etc/pkg/repos/reconciler.conf``), compared as text like
make.conf.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe
from reconciler.remote import PKG_MARKER, PKG_REPO_CONF

PROBES = (
    Probe("pkg-query", ("pkg", "query", "-a", "%o\\t%n\\t%v\\t%a\\t%R")),
    Probe("pkg-flavors", ("pkg", "query", "-a", "%n\\t%At\\t%Av")),
    Probe("pkg-offered", ("pkg", "rquery", "-U", "-r", "reconciler", "-a", "%o\\t%n\\t%v")),
    Probe("pkg-marker", ("cat", PKG_MARKER)),
    Probe("pkg-repo-conf", ("cat", PKG_REPO_CONF)),
)
MARKER_PROBES = tuple(p for p in PROBES if p.name in ("pkg-marker", "pkg-repo-conf"))


@dataclass(frozen=True)
class InstalledPackage:
    origin: str
    name: str
    version: str
    automatic: bool
    repository: str
    flavor: str | None = None

    @property
    def spec(self) -> str:
        """origin@flavor for a flavored package, else the origin (what buildset.yaml lists)."""
        return f"{self.origin}@{self.flavor}" if self.flavor else self.origin

    def matches(self, spec: str) -> bool:
        """pkg's own matching (libpkg/pkgdb_query.c): origin, or origin@flavor."""
        return spec == self.spec if "@" in spec else spec == self.origin


@dataclass(frozen=True)
class OfferedPackage:
    """One package of the host's ``reconciler`` repository (its local catalogue)."""

    origin: str
    name: str
    version: str


@dataclass(frozen=True)
class PackageMarker:
    pkgset: str | None
    packages: tuple[str, ...]
    installed: str | None


@dataclass(frozen=True)
class InstalledPackages:
    pkg_present: bool
    packages: tuple[InstalledPackage, ...] = ()
    marker: PackageMarker | None = None  # None: the reconciler never installed packages here
    repo_conf: str | None = None  # None: no reconciler.conf
    #: the reconciler repository's packages (empty: not read, or no local catalogue)
    offered: tuple[OfferedPackage, ...] = ()
    #: whether pkg query was asked at all (False: the record alone, for a set without packages)
    queried: bool = True

    def find(self, spec: str) -> InstalledPackage | None:
        return next((p for p in self.packages if p.matches(spec)), None)

    def has(self, spec: str) -> bool:
        return self.find(spec) is not None

    def offered_version(self, name: str) -> str | None:
        return next((o.version for o in self.offered if o.name == name), None)


def parse_query(text: str, flavors_text: str = "") -> tuple[InstalledPackage, ...]:
    flavors: dict[str, str] = {}
    for line in flavors_text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == "flavor" and parts[2]:
            flavors[parts[0]] = parts[2]
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 5 or "/" not in parts[0]:
            continue  # not a package line
        origin, name, version, automatic, repository = parts
        found.append(
            InstalledPackage(origin, name, version, automatic == "1", repository, flavors.get(name))
        )
    return tuple(sorted(found, key=lambda p: p.name))


def parse_offered(text: str) -> tuple[OfferedPackage, ...]:
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and "/" in parts[0]:
            found.append(OfferedPackage(*parts))
    return tuple(sorted(found, key=lambda p: p.name))


def parse_marker(text: str) -> PackageMarker:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return PackageMarker(
        pkgset=values.get("pkgset") or None,
        packages=tuple(values.get("packages", "").split()),
        installed=values.get("installed") or None,
    )


def parse_marker_only(outputs: dict[str, Output]) -> InstalledPackages:
    """:data:`MARKER_PROBES`' answers: the record and reconciler.conf, nothing queried."""
    marker, conf = outputs["pkg-marker"], outputs["pkg-repo-conf"]
    return InstalledPackages(
        pkg_present=False,
        marker=parse_marker(marker.stdout) if marker.ok else None,
        repo_conf=conf.stdout if conf.ok else None,
        queried=False,
    )


def parse(outputs: dict[str, Output]) -> InstalledPackages:
    query, flavors = outputs["pkg-query"], outputs["pkg-flavors"]
    marker, conf = outputs["pkg-marker"], outputs["pkg-repo-conf"]
    offered = outputs.get("pkg-offered")
    return InstalledPackages(
        pkg_present=query.ok,
        packages=parse_query(query.stdout, flavors.stdout if flavors.ok else "")
        if query.ok
        else (),
        marker=parse_marker(marker.stdout) if marker.ok else None,
        repo_conf=conf.stdout if conf.ok else None,
        offered=parse_offered(offered.stdout) if offered is not None and offered.ok else (),
    )
