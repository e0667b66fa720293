"""Does the running host match the build it should run? (pure; the confirm step asks it)"""

from __future__ import annotations

from reconciler.facts.host import HostFacts
from reconciler.plan.install import Running, Target
from reconciler.plan.packages import missing_packages, runs_package_set
from reconciler.remote import short


def verify_problems(facts: HostFacts, target: Target) -> list[str]:
    """What differs between the running host and ``target`` ([] when it runs it)."""
    run = Running.of(facts)
    problems = []
    if run.ident != target.kernconf:
        problems.append(f"uname -i is {run.ident}, expected {target.kernconf}")
    if run.revision_known() and not run.revision_is(target):
        problems.append(f"uname -v carries {run.hash12}, expected {target.hash12}")
    if run.kernel_build is not None and run.kernel_build != target.build:
        problems.append(
            f"the running kernel was built for build {short(run.kernel_build)}, "
            f"expected {short(target.build)}"
        )
    if run.marker != target.build:
        problems.append(
            f"installed build is {short(run.marker or 'none')}, expected {short(target.build)}"
        )
    if target.pkgset is not None:
        problems += _package_problems(facts, target)
    if not target.in_place and run.booted_be != target.be:
        problems.append(f"booted boot environment is {run.booted_be}, expected {target.be}")
    return problems


def _package_problems(facts: HostFacts, target: Target) -> list[str]:
    installed = facts.packages
    assert target.pkgset is not None
    found = []
    if not runs_package_set(installed, target.pkgset):
        have = installed.marker.pkgset if installed and installed.marker else None
        found.append(
            f"package set is {short(have or 'none')}, expected {short(target.pkgset)}"
        )
    missing = missing_packages(installed, target.packages)
    if missing:
        found.append(f"pkg query does not show {', '.join(missing)}")
    return found
