"""Where to connect: a host's name (for messages), address, port and login user.

The transport knows hosts only as targets; the config layer's Host and its
pinned keys are turned into a Target and parsed keys by reconciler.facts.connect.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    address: str
    port: int = 22
    user: str = "root"

    @property
    def pattern(self) -> str:
        """How known_hosts names the address (``[addr]:port`` off port 22)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"
