"""When the running system booted: ``sysctl -n kern.boottime``.

sysctl(8) prints the struct timeval as ``{ sec = N, usec = N } <ctime>``.
The planner compares it with the boot time the ledger recorded before a
reboot was asked for: unchanged means the reboot never happened.
"""

from __future__ import annotations

from reconciler.facts.probe import Output, Probe

PROBES = (Probe("boottime", ("sysctl", "-n", "kern.boottime")),)


def parse(outputs: dict[str, Output]) -> str | None:
    out = outputs["boottime"]
    text = out.stdout.strip()
    return text if out.ok and text else None
