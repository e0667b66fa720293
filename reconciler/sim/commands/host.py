"""The simulated host a command runs on, seen from inside its namespace."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.sim import kernel, state
from reconciler.sim.layout import NS_FLEET, NS_SELF, FleetLayout
from reconciler.sim.spec import HostSpec, Timings, load_fleet


class Host:
    """A simulated host (plain class: dataclasses cost start-up time here)."""

    def __init__(self, name: str, layout: FleetLayout) -> None:
        self.name = name
        self.layout = layout

    @classmethod
    def current(cls) -> Host:
        return cls(NS_SELF.read_text(encoding="utf-8").strip(), FleetLayout(NS_FLEET))

    @property
    def dir(self) -> Path:
        return self.layout.host(self.name)

    def state(self) -> dict[str, Any]:
        return state.load(self.dir)

    @contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        with state.update(self.dir) as st:
            yield st

    def count(self, event: str) -> None:
        state.count(self.dir, event)

    def fault(self, kind: str) -> Any:
        return state.fault(self.dir, kind)

    def take_fault(self, kind: str) -> Any:
        return state.take_fault(self.dir, kind)

    def fleet(self) -> tuple[list[HostSpec], Timings]:
        specs, timings, _ = load_fleet(self.layout)
        return specs, timings

    def spec(self) -> HostSpec:
        return next(s for s in self.fleet()[0] if s.name == self.name)

    def running_kernel(self) -> dict[str, str]:
        return dict(self.state().get("running_kernel") or {})

    def world(self, root: str = "/") -> dict[str, str]:
        return kernel.read(Path(root) / kernel.WORLD_FILE) or {}

    def slow_factor(self) -> float:
        return state.slow_factor(self.dir)

    @property
    def ufs(self) -> bool:
        return bool(self.state().get("ufs"))


def err(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)
