"""Results and progress events of a rollout (shared by the engine, apply and the daemon)."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.vocabulary import GOOD_HOST_OUTCOMES, EventKind, HostOutcome


@dataclass(frozen=True)
class Event:
    """Progress for humans, logs and observers (typed: nobody parses ``message``)."""

    kind: EventKind
    message: str
    buildset: str | None = None
    host: str | None = None
    #: the plan step an EventKind.STEP event starts
    step: str | None = None


@dataclass(frozen=True)
class HostResult:
    host: str
    buildset: str
    stage: str
    outcome: HostOutcome
    message: str
    #: more for a person, when the outcome is a failure (a build's log path and last lines)
    detail: str = ""
    #: WAITING for a gate that opens by itself (a maintenance window, a freeze, another
    #: reconciler working on the host): nothing failed, try again later
    gated: bool = False


@dataclass(frozen=True)
class Report:
    converged: bool  # every host of the selected build sets is on the desired state
    interrupted: bool  # stopped at a safe point because ``stop`` was set
    results: tuple[HostResult, ...]
    summary: tuple[str, ...]  # human lines, one per build set

    @property
    def drifted(self) -> tuple[str, ...]:
        """Hosts left differing under ``drift: report`` (converged with drift)."""
        return tuple(r.host for r in self.results if r.outcome == HostOutcome.DRIFT)


def settled(outcome: HostOutcome) -> bool:
    """On the desired state as far as the policy wants it (drift: report counts)."""
    return outcome in GOOD_HOST_OUTCOMES or outcome == HostOutcome.DRIFT
