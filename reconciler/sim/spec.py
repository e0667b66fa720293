"""What a simulated fleet is made of: its hosts and timings (fleet.json).

Kept free of heavy imports (NamedTuple, not dataclasses): every simulated
command loads it, and start-up time is paid on every SSH command.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from reconciler.sim.layout import FleetLayout


class HostSpec(NamedTuple):
    name: str
    address: str
    port: int = 22
    kernconf: str = "GENERIC"
    src: bool = False
    ufs: bool = False
    obj_in_be: bool = False
    no_git: bool = False  # no git package: kernels it builds carry no VCS word
    # The text of a custom kernconf the first kernel was built from ("" for a stock one).
    kernel_config: str = ""


class Timings(NamedTuple):
    build_seconds: float = 3.0
    install_seconds: float = 1.0
    boot_seconds: float = 1.0
    # shutdown -r returns at once; init's rc.shutdown takes the system down this much later
    shutdown_seconds: float = 2.0
    # mount_nfs sleeps up to 60 s between tries (rtm_ifinfo_sleep(60) in getnfsargs())
    nfs_retry_seconds: float = 60.0


def load_fleet(layout: FleetLayout) -> tuple[list[HostSpec], Timings, dict[str, object]]:
    try:
        data = json.loads(layout.fleet_json.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        from reconciler.errors import SimError  # late: errors.py imports dataclasses

        raise SimError(f"{layout.root}: no simulated fleet here (no fleet.json)") from exc
    specs = [HostSpec(**h) for h in data["hosts"]]
    return specs, Timings(**data["timings"]), data
