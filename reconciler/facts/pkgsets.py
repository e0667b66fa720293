"""Package sets on a build host: ``/usr/obj/packages/<id>/`` (remote contract), and its poudriere.

Each package set has ``.reconciler/inputs`` written before the build starts
and ``.reconciler/exit`` (the build's status) when it ends, like a world
build (objtree.py), and ``repo`` (the pkg repository; for poudriere a link
to its ``${POUDRIERE_DATA}/packages/<jail>-<tree>-<set>``). The probe is a
fixed script printing ``<id> exit <N>|started|unknown repo|norepo`` per
directory (``repo`` when ``repo/meta.conf`` exists). Also read: whether
poudriere is installed (``/usr/local/bin/poudriere``), the reconciler's
poudriere jails and ports trees (the attribute directories of
``poudriere.d/``, as ``poudriere jail -l -n`` lists them), and whether the
package build job runs (``pgrep -F``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from reconciler.facts.probe import Output, Probe
from reconciler.remote import (
    BUILD_EXIT,
    BUILD_INPUTS,
    PACKAGES_PIDFILE,
    PKG_SET_REPO,
    PKG_SETS,
    POUDRIERE_ETC,
)
from reconciler.transport.command import sh

_SCRIPT = (
    'for d in "$1"/*/; do [ -d "$d" ] || continue; id=${d%/}; id=${id##*/}; '
    'if [ -f "$d$4/meta.conf" ]; then r=repo; else r=norepo; fi; '
    'if [ -f "$d$2" ]; then printf "%s exit %s %s\\n" "$id" "$(head -n 1 "$d$2")" "$r"; '
    'elif [ -f "$d$3" ]; then printf "%s started %s\\n" "$id" "$r"; '
    'else printf "%s unknown %s\\n" "$id" "$r"; fi; done'
)

PROBES = (
    Probe("pkgsets", tuple(sh(_SCRIPT, PKG_SETS, BUILD_EXIT, BUILD_INPUTS, PKG_SET_REPO))),
    Probe("poudriere", ("test", "-x", "/usr/local/bin/poudriere")),
    Probe("poudriere-jails", ("ls", "-1", f"{POUDRIERE_ETC}/poudriere.d/jails")),
    Probe("poudriere-ports", ("ls", "-1", f"{POUDRIERE_ETC}/poudriere.d/ports")),
    Probe("job-packages", ("pgrep", "-F", PACKAGES_PIDFILE)),
)

SetState = Literal["done", "failed", "running", "interrupted"]
_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class PackageSet:
    id: str
    state: SetState
    exit_code: int | None = None
    repo: bool = False  # the repository's catalogue (meta.conf) is there


@dataclass(frozen=True)
class PackageSets:
    sets: dict[str, PackageSet] = field(default_factory=dict)
    poudriere: bool = False
    jails: tuple[str, ...] = ()
    ports_trees: tuple[str, ...] = ()
    job_pid: int | None = None

    def state(self, pkgset_id: str) -> str:
        """done (and its repository there), failed, running, interrupted or absent."""
        found = self.sets.get(pkgset_id)
        if found is None:
            return "absent"
        if found.state == "done" and not found.repo:
            return "interrupted"  # exit 0 recorded but no catalogue: not usable
        return found.state


def parse_sets(text: str, running: bool) -> dict[str, PackageSet]:
    sets: dict[str, PackageSet] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or not _ID.match(parts[0]):
            continue
        pkgset_id, what, repo = parts[0], parts[1], parts[-1] == "repo"
        if what == "exit" and len(parts) == 4:
            code = int(parts[2]) if parts[2].lstrip("-").isdigit() else None
            sets[pkgset_id] = PackageSet(pkgset_id, "done" if code == 0 else "failed", code, repo)
        elif what == "started":
            state: SetState = "running" if running else "interrupted"
            sets[pkgset_id] = PackageSet(pkgset_id, state, None, repo)
    return sets


def _names(out: Output) -> tuple[str, ...]:
    return tuple(sorted(n for n in out.stdout.split() if n)) if out.ok else ()


def parse(outputs: dict[str, Output]) -> PackageSets:
    job = outputs["job-packages"]
    words = job.stdout.split()
    pid = int(words[0]) if job.ok and words and words[0].isdigit() else None
    listing = outputs["pkgsets"]
    return PackageSets(
        sets=parse_sets(listing.stdout if listing.ok else "", pid is not None),
        poudriere=outputs["poudriere"].ok,
        jails=_names(outputs["poudriere-jails"]),
        ports_trees=_names(outputs["poudriere-ports"]),
        job_pid=pid,
    )
