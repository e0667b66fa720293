"""Boot environments: ``bectl list -H``.

Tab-separated columns BE, Active, Mountpoint, Space, Created
(``sbin/bectl/bectl_list.c``). Active combines ``N`` (booted now), ``R``
(active on reboot), ``T`` (next boot only) or is ``-``. A host without ZFS
boot environments makes bectl fail; that is a fact too (``available=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe

PROBES = (Probe("bectl", ("bectl", "list", "-H")),)


@dataclass(frozen=True)
class BootEnvironment:
    name: str
    active: str  # the raw flags, e.g. "NR", "T", "-"
    mountpoint: str | None
    space: str
    created: str

    @property
    def booted(self) -> bool:
        return "N" in self.active

    @property
    def on_reboot(self) -> bool:
        return "R" in self.active

    @property
    def next_boot_only(self) -> bool:
        return "T" in self.active


@dataclass(frozen=True)
class BootEnvironments:
    available: bool
    environments: tuple[BootEnvironment, ...] = ()

    @property
    def booted(self) -> BootEnvironment | None:
        return next((be for be in self.environments if be.booted), None)

    @property
    def next_boot(self) -> BootEnvironment | None:
        """What the next boot will run: a one-shot wins over the permanent one."""
        once = next((be for be in self.environments if be.next_boot_only), None)
        return once or next((be for be in self.environments if be.on_reboot), None)


def parse_bectl_list(text: str) -> tuple[BootEnvironment, ...]:
    result = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 5:
            cols = line.split(None, 4)  # tolerate space-separated copies
        if len(cols) < 5:
            continue
        name, active, mountpoint, space, created = (c.strip() for c in cols[:5])
        result.append(
            BootEnvironment(name, active, None if mountpoint == "-" else mountpoint, space, created)
        )
    return tuple(result)


def parse(outputs: dict[str, Output]) -> BootEnvironments:
    out = outputs["bectl"]
    if not out.ok:
        return BootEnvironments(available=False)
    return BootEnvironments(available=True, environments=parse_bectl_list(out.stdout))
