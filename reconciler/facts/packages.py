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
    Probe("pkg-marker", ("cat", PKG_MARKER)),
    Probe("pkg-repo-conf", ("cat", PKG_REPO_CONF)),
)


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

    def find(self, spec: str) -> InstalledPackage | None:
        return next((p for p in self.packages if p.matches(spec)), None)

    def has(self, spec: str) -> bool:
        return self.find(spec) is not None


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


def parse(outputs: dict[str, Output]) -> InstalledPackages:
    query, flavors = outputs["pkg-query"], outputs["pkg-flavors"]
    marker, conf = outputs["pkg-marker"], outputs["pkg-repo-conf"]
    return InstalledPackages(
        pkg_present=query.ok,
        packages=parse_query(query.stdout, flavors.stdout if flavors.ok else "")
        if query.ok
        else (),
        marker=parse_marker(marker.stdout) if marker.ok else None,
        repo_conf=conf.stdout if conf.ok else None,
    )
