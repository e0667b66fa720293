"""Pending reboot: ``sysctl -n kern.bootfile``.

``installkernel`` moves ``/boot/kernel`` to ``/boot/kernel.old`` and points
``kern.bootfile`` at ``/boot/kernel.old/kernel`` (``sys/conf/kern.post.mk``),
so a bootfile under ``kernel.old`` means a new kernel is installed but the
old one still runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe

PROBES = (Probe("bootfile", ("sysctl", "-n", "kern.bootfile")),)


@dataclass(frozen=True)
class BootFile:
    path: str | None

    @property
    def reboot_pending(self) -> bool:
        return self.path is not None and "/kernel.old/" in self.path + "/"


def parse(outputs: dict[str, Output]) -> BootFile:
    out = outputs["bootfile"]
    text = out.stdout.strip()
    return BootFile(text if out.ok and text else None)
