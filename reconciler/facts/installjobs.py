"""Install jobs that have ended: the exit files under ``/var/db/reconciler`` (remote contract).

A detached install job writes ``install-<build id>[-kernel|-world].exit``
when it ends (reconciler.rollout.scripts). The probe is a fixed script that
prints one line per exit file, ``<name> <status>``, so the planner can tell
"an install of this build ended, with this status, while nobody watched"
without a second round trip. Whether a job still runs is ``jobs`` (pgrep).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reconciler.facts.probe import Output, Probe
from reconciler.remote import DB_DIR
from reconciler.transport.command import sh

_SCRIPT = (
    'for f in "$1"/install-*.exit; do [ -f "$f" ] || continue; n=${f##*/}; '
    'printf "%s %s\\n" "${n%.exit}" "$(head -n 1 "$f")"; done'
)

PROBES = (Probe("install-exits", tuple(sh(_SCRIPT, DB_DIR))),)

#: parts: kernel/world in place; p<12 hex> a boot-environment install with that package set
_LINE = re.compile(r"^install-([0-9a-f]{64})(?:-(kernel|world|p[0-9a-f]{12}))? (-?\d+)$")


@dataclass(frozen=True)
class InstallJobs:
    #: "<build id>" or "<build id>-kernel"/"-world" -> exit status
    exits: dict[str, int] = field(default_factory=dict)

    def exit_code(self, build_id: str, part: str = "") -> int | None:
        return self.exits.get(f"{build_id}-{part}" if part else build_id)


def parse(outputs: dict[str, Output]) -> InstallJobs:
    found: dict[str, int] = {}
    for line in outputs["install-exits"].stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            build, part, code = match.groups()
            found[f"{build}-{part}" if part else build] = int(code)
    return InstallJobs(found)
