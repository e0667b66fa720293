"""Builds in the build host's ``/usr/obj`` (remote contract).

Each build is ``/usr/obj/<build id>/`` with ``.reconciler/inputs`` written
before make starts and ``.reconciler/exit`` (make's status) when it ends. The
probe is a fixed script (no values in it) that prints one line per build
directory: ``<id> exit <status>``, ``<id> started`` or ``<id> unknown``.
Whether ``/usr/obj`` is its own file system comes from ``mount -p`` (mounts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from reconciler.facts.probe import Output, Probe
from reconciler.remote import BUILD_EXIT, BUILD_INPUTS, OBJ
from reconciler.transport.command import sh

_SCRIPT = (
    'for d in "$1"/*/; do [ -d "$d" ] || continue; id=${d%/}; id=${id##*/}; '
    'if [ -f "$d$2" ]; then '
    'printf "%s exit %s\\n" "$id" "$(head -n 1 "$d$2")"; '
    'elif [ -f "$d$3" ]; then printf "%s started\\n" "$id"; '
    'else printf "%s unknown\\n" "$id"; fi; done'
)

PROBES = (Probe("objtree", tuple(sh(_SCRIPT, OBJ, BUILD_EXIT, BUILD_INPUTS))),)

BuildState = Literal["done", "failed", "running", "interrupted"]
_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Build:
    id: str
    state: BuildState
    exit_code: int | None = None


@dataclass(frozen=True)
class ObjTree:
    builds: dict[str, Build] = field(default_factory=dict)

    def state(self, build_id: str) -> str:
        """done, failed, running, interrupted or absent."""
        build = self.builds.get(build_id)
        return build.state if build else "absent"


def parse_objtree(text: str, build_running: bool) -> ObjTree:
    builds: dict[str, Build] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or not _ID.match(parts[0]):
            continue  # not a reconciler build directory
        build_id, what = parts[0], parts[1]
        if what == "exit":
            code = int(parts[2]) if len(parts) > 2 and parts[2].lstrip("-").isdigit() else None
            state: BuildState = "done" if code == 0 else "failed"
            builds[build_id] = Build(build_id, state, code)
        elif what == "started":
            # No exit file: running if the build job lives, else it died with the host.
            builds[build_id] = Build(build_id, "running" if build_running else "interrupted")
    return ObjTree(builds)


def parse(outputs: dict[str, Output], build_running: bool) -> ObjTree:
    out = outputs["objtree"]
    return parse_objtree(out.stdout if out.ok else "", build_running)
