"""Kernel configuration files present in ``/usr/src/sys/<arch>/conf``.

The listing shows whether stock configs (GENERIC, ...) exist; custom ones
named by the config repo are read too, so the plan can tell a stale copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.facts.probe import Output, Probe


def conf_dir(arch: str) -> str:
    return f"/usr/src/sys/{arch}/conf"


def probes(arch: str, custom: Iterable[str]) -> tuple[Probe, ...]:
    directory = conf_dir(arch)
    found = [Probe(f"kconf-ls:{arch}", ("ls", "-1", directory))]
    found += [Probe(f"kconf:{arch}:{ident}", ("cat", f"{directory}/{ident}")) for ident in custom]
    return tuple(found)


@dataclass(frozen=True)
class KernelConfigs:
    arch: str
    present: tuple[str, ...]  # file names in sys/<arch>/conf
    contents: dict[str, str] = field(default_factory=dict)  # custom ident -> text (present only)


def parse(outputs: dict[str, Output], arch: str, custom: Iterable[str]) -> KernelConfigs:
    listing = outputs[f"kconf-ls:{arch}"]
    present = (
        tuple(sorted(n.strip() for n in listing.stdout.splitlines() if n.strip()))
        if listing.ok
        else ()
    )
    contents = {}
    for ident in custom:
        out = outputs[f"kconf:{arch}:{ident}"]
        if out.ok:
            contents[ident] = out.stdout
    return KernelConfigs(arch=arch, present=present, contents=contents)
