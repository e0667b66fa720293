"""What a plan is: per build set, per stage, per host, the ordered steps (frozen values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.vocabulary import INSTALL_STEPS, StepKind

FORMAT = 2


@dataclass(frozen=True)
class Step:
    kind: StepKind
    reason: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "reason": self.reason, "detail": dict(self.detail)}


@dataclass(frozen=True)
class HostPlan:
    host: str
    reachable: bool
    steps: tuple[Step, ...] = ()
    #: things a person should know that are not steps (drift left as is, ...)
    notes: tuple[str, ...] = ()
    #: why its steps are held back by a gate (a quarantined build); None: not held
    held: str | None = None
    #: why steps[waits_at:] wait for a time (a maintenance window, a freeze) and until
    #: when; the steps before run now. None: nothing waits.
    waiting: str | None = None
    waits_at: int | None = None

    @property
    def in_sync(self) -> bool:
        return not self.steps and self.held is None

    @property
    def first(self) -> Step | None:
        return self.steps[0] if self.steps else None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "reachable": self.reachable,
            "in_sync": self.in_sync,
            "steps": [s.to_json() for s in self.steps],
            "notes": list(self.notes),
            "held": self.held,
            "waiting": self.waiting,
            "waits_at": self.waits_at,
        }


@dataclass(frozen=True)
class StagePlan:
    name: str
    hosts: tuple[HostPlan, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for h in self.hosts for s in h.steps)

    def host(self, name: str) -> HostPlan | None:
        return next((h for h in self.hosts if h.host == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "hosts": [h.to_json() for h in self.hosts]}


def _count(steps: tuple[Step, ...], kinds: frozenset[StepKind]) -> int:
    return sum(1 for s in steps if s.kind in kinds)


@dataclass(frozen=True)
class BuildSetPlan:
    name: str
    build: str  # build id, 64 hex
    arch: str
    install_method: str
    stages: tuple[StagePlan, ...]
    warnings: tuple[str, ...] = ()
    #: the waits the rollout will observe between these steps (test stage, waves, groups)
    gates: tuple[str, ...] = ()
    #: what preflight says will fail (reconciler.plan.preflight): while there is one,
    #: the rollout touches no host of the set
    problems: tuple[str, ...] = ()
    #: ``host:check`` of each problem, in order: what a recorded halt is compared by
    problem_keys: tuple[str, ...] = ()
    #: the set's package set id (None: it lists no packages)
    pkgset: str | None = None

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for stage in self.stages for s in stage.steps)

    @property
    def builds(self) -> int:
        return _count(self.steps, frozenset({StepKind.BUILD}))

    @property
    def reboots(self) -> int:
        return _count(self.steps, frozenset({StepKind.REBOOT}))

    @property
    def installs(self) -> int:
        return _count(self.steps, INSTALL_STEPS)

    @property
    def unreachable(self) -> tuple[str, ...]:
        names = [h.host for st in self.stages for h in st.hosts if not h.reachable]
        return tuple(dict.fromkeys(names))

    def counts(self) -> dict[str, int]:
        return {
            "steps": len(self.steps),
            "builds": self.builds,
            "installs": self.installs,
            "reboots": self.reboots,
            "unreachable": len(self.unreachable),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "build": self.build,
            "arch": self.arch,
            "install": self.install_method,
            "packages": self.pkgset,
            "counts": self.counts(),
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "gates": list(self.gates),
            "stages": [s.to_json() for s in self.stages],
        }


@dataclass(frozen=True)
class Plan:
    generation: str | None  # config commit, None for a plain directory
    branch: str
    revision: str
    #: the src host's steps, shared by every build set (done once, before any set's stages)
    shared: StagePlan
    buildsets: tuple[BuildSetPlan, ...]

    def buildset(self, name: str) -> BuildSetPlan:
        return next(b for b in self.buildsets if b.name == name)

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.shared.steps + tuple(s for b in self.buildsets for s in b.steps)

    @property
    def in_sync(self) -> bool:
        return not self.steps and all(
            h.held is None for b in self.buildsets for st in b.stages for h in st.hosts
        )

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for b in self.buildsets for w in b.warnings))

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for b in self.buildsets for p in b.problems))

    def counts(self) -> dict[str, int]:
        totals = {"steps": len(self.shared.steps), "builds": 0, "installs": 0, "reboots": 0}
        for bs in self.buildsets:
            for key, value in bs.counts().items():
                if key != "unreachable":
                    totals[key] += value
        down = {h.host for h in self.shared.hosts if not h.reachable}
        totals["unreachable"] = len(down | {n for bs in self.buildsets for n in bs.unreachable})
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generation": self.generation or "worktree",
            "source": {"branch": self.branch, "revision": self.revision},
            "in_sync": self.in_sync,
            "counts": self.counts(),
            "warnings": list(self.warnings),
            "shared": self.shared.to_json(),
            "buildsets": [b.to_json() for b in self.buildsets],
        }
