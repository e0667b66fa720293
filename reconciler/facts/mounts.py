"""Mounts and NFS: ``mount -p``, ``/etc/fstab``, ``/etc/exports``.

``mount -p`` prints the mounted file systems in fstab(5) format, so one
parser serves both. exports(5) lines are kept as lines (comments and blanks
dropped); the plan checks that the paths it needs are exported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe

PROBES = (
    Probe("mount-p", ("mount", "-p")),
    Probe("fstab", ("cat", "/etc/fstab")),
)
EXPORTS_PROBES = (Probe("exports", ("cat", "/etc/exports")),)


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: str = "rw"


@dataclass(frozen=True)
class Mounts:
    mounted: tuple[Mount, ...]
    fstab: tuple[Mount, ...]
    mounted_known: bool = True  # False: mount -p failed, so nothing is known of mounts

    def at(self, mountpoint: str) -> Mount | None:
        """The mount that covers exactly this path (the last one wins, as in the kernel)."""
        found = [m for m in self.mounted if m.mountpoint == mountpoint]
        return found[-1] if found else None

    def filesystem_of(self, path: str) -> str | None:
        """The device of the mount holding ``path`` (the longest mount point above it).

        mountd keys exports by file system: two paths with the same answer here
        share one exports(5) line per client. None when mounts are unknown.
        """
        if not self.mounted_known or not self.mounted:
            return None
        best: Mount | None = None
        for mount in self.mounted:  # later entries cover earlier ones, as in the kernel
            top = mount.mountpoint.rstrip("/")
            covers = path == mount.mountpoint or path.startswith(top + "/")
            if covers and (best is None or len(mount.mountpoint) >= len(best.mountpoint)):
                best = mount
        return best.device if best else None

    def filesystems(self, paths: Iterable[str]) -> dict[str, str]:
        """{path: file system} for render.exports, leaving out what is unknown."""
        found = {}
        for path in paths:
            fs = self.filesystem_of(path)
            if fs is not None:
                found[path] = fs
        return found


def parse_fstab(text: str) -> tuple[Mount, ...]:
    result = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        fields = line.split()
        if len(fields) < 3:
            continue
        result.append(
            Mount(fields[0], fields[1], fields[2], fields[3] if len(fields) > 3 else "rw")
        )
    return tuple(result)


def parse(outputs: dict[str, Output]) -> Mounts:
    mounted = outputs["mount-p"]
    fstab = outputs["fstab"]
    return Mounts(
        mounted=parse_fstab(mounted.stdout) if mounted.ok else (),
        fstab=parse_fstab(fstab.stdout) if fstab.ok else (),
        mounted_known=mounted.ok,
    )


def parse_exports_text(text: str) -> tuple[str, ...]:
    lines = []
    pending = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if line.endswith("\\"):  # exports(5) continuation lines
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            lines.append(" ".join(line.split()))
    return tuple(lines)


def parse_exports(outputs: dict[str, Output]) -> tuple[str, ...] | None:
    out = outputs["exports"]
    return parse_exports_text(out.stdout) if out.ok else None
