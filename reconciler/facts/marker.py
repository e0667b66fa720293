"""The installed build marker ``/var/db/reconciler/installed`` (remote contract).

``key=value`` lines: build, revision, kernconf, generation, installed. Absent
on a host the reconciler never installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe
from reconciler.remote import MARKER

PROBES = (Probe("marker", ("cat", MARKER)),)


@dataclass(frozen=True)
class InstalledMarker:
    build: str | None
    revision: str | None
    kernconf: str | None
    generation: str | None
    installed: str | None


def parse_marker(text: str) -> InstalledMarker:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return InstalledMarker(
        build=values.get("build") or None,
        revision=values.get("revision") or None,
        kernconf=values.get("kernconf") or None,
        generation=values.get("generation") or None,
        installed=values.get("installed") or None,
    )


def parse(outputs: dict[str, Output]) -> InstalledMarker | None:
    out = outputs["marker"]
    return parse_marker(out.stdout) if out.ok else None
