"""Where each build set's rollout stands: the planner's second input, beside the facts.

Pure values read from ``status/<set>/rollout.json`` (written only by
:mod:`reconciler.statusstore`). The planner needs them for what a host's
facts cannot show: that a reboot was already asked for, which builds passed
the test stage, that drift was already reported for a generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.vocabulary import Phase, RolloutStatus


@dataclass(frozen=True)
class HostProgress:
    build: str | None = None
    phase: Phase = Phase.NONE
    since: str = ""
    #: kern.boottime read just before a recorded reboot ("" if unknown).
    boottime: str = ""
    #: the boot environment the host ran before the install (to roll back to).
    previous_be: str | None = None
    message: str = ""
    #: the generation whose drift was last recorded (drift: report records it once).
    drift_reported: str | None = None
    #: adopted by ``reconciler init``: it runs ``build`` though it has no marker of ours
    adopted: bool = False
    #: boot environments this host installed and confirmed: name -> its bectl "Created"
    installed_bes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostProgress:
        try:
            phase = Phase(str(data.get("phase") or ""))
        except ValueError:
            phase = Phase.NONE  # a phase this version does not know: decide from facts
        return cls(
            build=_text(data.get("build")),
            phase=phase,
            since=str(data.get("since") or ""),
            boottime=str(data.get("boottime") or ""),
            previous_be=_text(data.get("previous_be")),
            message=str(data.get("message") or ""),
            drift_reported=_text(data.get("drift_reported")),
            adopted=data.get("adopted") is True,
            installed_bes=_names(data.get("installed_bes")),
        )


@dataclass(frozen=True)
class SetProgress:
    generation: str | None = None
    build: str | None = None
    status: RolloutStatus | None = None
    stage: str | None = None
    tested: tuple[str, ...] = ()
    hosts: Mapping[str, HostProgress] = field(default_factory=dict)
    #: build id -> why it is quarantined (failed its test stage); empty when none
    quarantined: Mapping[str, str] = field(default_factory=dict)
    #: ``host:check`` of the preflight problems the last halt recorded (the same
    #: ones found again are not recorded again: a daemon polls)
    preflight: tuple[str, ...] = ()

    def tested_build(self, build_id: str) -> bool:
        return build_id in self.tested

    def host(self, name: str) -> HostProgress:
        return self.hosts.get(name) or HostProgress()

    def phase(self, host: str, build_id: str) -> Phase:
        """The host's recorded phase for ``build_id`` (NONE if none, or for another build)."""
        entry = self.host(host)
        return entry.phase if entry.build == build_id else Phase.NONE

    @classmethod
    def from_json(cls, data: object) -> SetProgress:
        if not isinstance(data, Mapping):
            return cls()
        hosts = data.get("hosts")
        status = data.get("outcome")
        tested = data.get("tested")
        preflight = data.get("preflight")
        return cls(
            generation=_text(data.get("generation")),
            build=_text(data.get("build")),
            status=RolloutStatus(status) if status in set(RolloutStatus) else None,
            stage=_text(data.get("stage")),
            tested=tuple(str(b) for b in tested) if isinstance(tested, list) else (),
            preflight=tuple(str(k) for k in preflight) if isinstance(preflight, list) else (),
            hosts={
                str(name): HostProgress.from_json(entry)
                for name, entry in (hosts.items() if isinstance(hosts, Mapping) else ())
                if isinstance(entry, Mapping)
            },
        )


NOTHING = SetProgress()


def _names(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return str(value) if value else None
