"""The packages half of the plan (issue 11, docs/packages.md): pure, like the rest of plan/.

- the src host's ports tree at ``ports.revision`` (a shared step, like /usr/src);
- the set's package repository, built once on the build host after the world
  build, when some host needs it and ``/usr/obj/packages/<id>`` lacks it;
- what each host's install does with packages: which origins it installs,
  which it upgrades (pkg upgrade brings every installed one to the set's
  versions) and which it removes (only those the reconciler's record says it
  installed: never what it did not install);
- drift on a host that runs its package set: a listed package removed by
  hand (``pkg query`` does not show it) or at another version than the
  host's repository offers (``pkg rquery -U``); a package the reconciler
  does not manage is never drift. ``rollout.drift`` says heal (reinstall
  it, in place) or report, as for make.conf/src.conf;
- a set whose ``packages:`` block was dropped: what the reconciler's record
  says it installed is removed, nothing else.

A build set with packages is rolled out as one unit, the package set id (it
covers the build id): a new package set on the same world is tested and
promoted like a new world, in a boot environment of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.config.buildid import build_id
from reconciler.config.model import BuildSet, Config, Host
from reconciler.config.pkgsetid import package_set_id
from reconciler.facts.host import HostFacts
from reconciler.facts.packages import InstalledPackages
from reconciler.plan.model import Step
from reconciler.progress import HostProgress
from reconciler.remote import pkg_repo, short
from reconciler.vocabulary import Phase, StepKind


def package_set(config: Config, bs: BuildSet) -> str | None:
    """The set's package set id; None when it lists no packages (or the tree is not pinned)."""
    if bs.packages is None or config.ports is None or not config.ports.pinned:
        return None
    return package_set_id(config, bs)


def unit_id(config: Config, bs: BuildSet) -> str:
    """What the set's rollout is keyed by: its package set id, else its build id."""
    return package_set(config, bs) or build_id(config, bs)


def wanted(bs: BuildSet, host: Host) -> tuple[str, ...]:
    """The origins ``host`` runs (the set's, then its extras); () without packages."""
    return bs.packages.for_host(host.name) if bs.packages is not None else ()


@dataclass(frozen=True)
class PackageChange:
    """What one host's install does with packages."""

    pkgset: str
    install: tuple[str, ...] = ()  # listed, not installed
    upgrade: tuple[str, ...] = ()  # listed and installed: pkg upgrade to the set's versions
    remove: tuple[str, ...] = ()  # the reconciler installed them, the config lists them no more

    def words(self) -> str:
        parts = []
        for count, what in (
            (len(self.install), "to install"),
            (len(self.upgrade), "to upgrade"),
            (len(self.remove), "to remove"),
        ):
            if count:
                parts.append(f"{count} package{'s' if count != 1 else ''} {what}")
        return ", ".join(parts) or "no package to change"

    def to_json(self) -> dict[str, Any]:
        return {
            "pkgset": self.pkgset,
            "install": list(self.install),
            "upgrade": list(self.upgrade),
            "remove": list(self.remove),
        }


def dropped(installed: InstalledPackages | None, listed: tuple[str, ...]) -> tuple[str, ...]:
    """Origins the reconciler's record says it installed that ``listed`` no longer names."""
    if installed is None or installed.marker is None:
        return ()
    return tuple(o for o in installed.marker.packages if o not in listed)


def change_for(
    bs: BuildSet, host: Host, installed: InstalledPackages | None, pkgset: str
) -> PackageChange:
    listed = wanted(bs, host)
    have = installed if installed is not None and installed.pkg_present else None
    return PackageChange(
        pkgset=pkgset,
        install=tuple(o for o in listed if have is None or not have.has(o)),
        upgrade=tuple(o for o in listed if have is not None and have.has(o)),
        remove=dropped(installed, listed),
    )


def runs_package_set(installed: InstalledPackages | None, pkgset: str | None) -> bool:
    """The running root carries ``pkgset`` (the reconciler's record in it says so)."""
    if pkgset is None:
        return True
    marker = installed.marker if installed is not None else None
    return marker is not None and marker.pkgset == pkgset


@dataclass(frozen=True)
class PackageDrift:
    """Managed packages changed by hand on a host that runs its package set."""

    missing: tuple[str, ...] = ()  # listed, pkg query does not show them
    #: (listed origin, installed version, the repository's version)
    changed: tuple[tuple[str, str, str], ...] = ()

    @property
    def specs(self) -> tuple[str, ...]:
        """What a heal reinstalls from the repository."""
        return self.missing + tuple(spec for spec, _, _ in self.changed)

    def words(self) -> str:
        count = len(self.specs)
        what = [f"{o} missing" for o in self.missing] + [
            f"{o} at {have}, the repository has {offered}" for o, have, offered in self.changed
        ]
        return f"{count} package{'s' if count != 1 else ''} drifted: {', '.join(what)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "missing": list(self.missing),
            "changed": [
                {"origin": o, "installed": have, "repository": offered}
                for o, have, offered in self.changed
            ],
        }


def drift_words(detail: Mapping[str, Any]) -> str | None:
    """A heal-packages or report-drift step's ``drift`` detail in words again (None: none)."""
    found = detail.get("drift")
    if not isinstance(found, dict):
        return None
    changed = tuple(
        (str(c.get("origin")), str(c.get("installed")), str(c.get("repository")))
        for c in found.get("changed") or ()
        if isinstance(c, dict)
    )
    drift = PackageDrift(tuple(str(o) for o in found.get("missing") or ()), changed)
    return drift.words() if drift.specs else None


def package_drift(installed: InstalledPackages | None, listed: tuple[str, ...]) -> PackageDrift:
    """How the listed packages differ from what the host's repository holds (empty: none).

    Only ``listed`` packages are looked at: one the administrator installed
    that the set does not list is theirs. The version check needs the
    repository's local catalogue (``offered``); without it only missing
    packages are seen.
    """
    if installed is None or not installed.pkg_present:
        return PackageDrift()
    missing, changed = [], []
    for spec in listed:
        have = installed.find(spec)
        if have is None:
            missing.append(spec)
            continue
        offered = installed.offered_version(have.name)
        if offered is not None and offered != have.version:
            changed.append((spec, have.version, offered))
    return PackageDrift(tuple(missing), tuple(changed))


def drift_step(drift: PackageDrift, pkgset: str) -> Step:
    """drift: heal: reinstall what changed, from the host's repository, on the running root."""
    return Step(
        StepKind.HEAL_PACKAGES,
        f"{drift.words()} (reinstalled from package set {short(pkgset)} in place, no reboot)",
        {"pkgset": pkgset, "drift": drift.to_json(), "reinstall": list(drift.specs)},
    )


def removal_step(installed: InstalledPackages | None) -> Step | None:
    """``remove-packages`` when the set lists no packages and the record names some."""
    marker = installed.marker if installed is not None else None
    if marker is None:
        return None
    count = len(marker.packages)
    what = f"{count} package{'s' if count != 1 else ''} to remove"
    return Step(
        StepKind.REMOVE_PACKAGES,
        f"buildset.yaml lists no packages: {what}, the ones the reconciler installed "
        f"({', '.join(marker.packages) or 'none'}; package set {short(marker.pkgset or 'none')})",
        {"remove": list(marker.packages), "pkgset": marker.pkgset},
    )


def confirmed_with_packages(mine: HostProgress, installed: InstalledPackages | None) -> bool:
    """The host was confirmed on the package set its record names (its world with it)."""
    marker = installed.marker if installed is not None else None
    return (
        marker is not None
        and marker.pkgset is not None
        and mine.build == marker.pkgset
        and mine.phase == Phase.DONE
    )


def missing_packages(installed: InstalledPackages | None, listed: tuple[str, ...]) -> list[str]:
    """Listed origins ``pkg query`` does not show."""
    if installed is None or not installed.pkg_present:
        return list(listed)
    return [o for o in listed if not installed.has(o)]


# -- the src host: the ports tree at its revision -----------------------------


def ports_steps(config: Config, facts: HostFacts) -> list[Step]:
    """``checkout-ports`` when fleet.yaml pins the tree and the src host's differs."""
    ports = config.ports
    if ports is None or not ports.pinned or ports.revision is None:
        return []
    tree = facts.ports
    if tree is None:
        return []  # not read (facts recorded before the ports tree was observed)
    want = ports.revision
    detail = {"tree": ports.tree, "revision": want}
    if not tree.present:
        why = f"no git repository in {ports.tree}, desired {want[:12]}"
    elif tree.revision != want:
        why = f"{ports.tree} at {(tree.revision or 'unknown')[:12]}, desired {want[:12]}"
    else:
        return []
    return [Step(StepKind.CHECKOUT_PORTS, why, detail)]


def missing_origins(config: Config, bs: BuildSet, src: HostFacts | None) -> list[str]:
    """Origins of the set with no Makefile at the pinned revision (empty: all there, or unknown)."""
    if bs.packages is None or src is None or src.ports is None:
        return []
    known = src.ports.origins
    return sorted({o for o in bs.packages.all_origins if known.get(o.partition("@")[0]) is False})


# -- the build host: the package repository -----------------------------------


def package_build_steps(config: Config, bs: BuildSet, hf: HostFacts, needed: bool) -> list[Step]:
    """``build-packages`` (or ``await-packages``) when a host needs the set's repository."""
    pkgset = package_set(config, bs)
    if pkgset is None or not needed:
        return []
    sets = hf.package_sets
    state = sets.state(pkgset) if sets is not None else "absent"
    if state == "done":
        return []
    assert bs.packages is not None
    detail = {
        "pkgset": pkgset,
        "build": build_id(config, bs),
        "method": bs.packages.method,
        "origins": list(bs.packages.all_origins),
        "repo": pkg_repo(pkgset),
    }
    if state == "running":
        return [Step(StepKind.AWAIT_PACKAGES, f"package set {short(pkgset)} building", detail)]
    why = {
        "absent": f"package set {short(pkgset)} not in /usr/obj/packages",
        "failed": f"package set {short(pkgset)} failed earlier",
        "interrupted": f"package set {short(pkgset)} was interrupted",
    }[state]
    count = len(bs.packages.all_origins)
    return [
        Step(
            StepKind.BUILD_PACKAGES,
            f"{why}; {bs.packages.method} builds {count} origin(s) in a jail of its world",
            detail,
        )
    ]
