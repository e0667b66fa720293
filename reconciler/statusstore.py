"""The status store: the only owner of the ledger's ``status/...`` files.

kopf's progress storage is the model: one object knows where progress lives
and how it is read and written; nobody else builds a ``status/<set>/...``
path. Files in the status branch's tree:

- ``status/<set>/rollout.json``: where the set's rollout stands (generation,
  build, status, tested builds, each host's phase) — read back as
  :class:`reconciler.progress.SetProgress`, the planner's second input;
- ``status/<set>/<host>.json``: the host's last outcome and last facts
  (``plan --offline`` and ``status`` read these).

Every change is one ledger commit together with the outcome that caused it
(:class:`Update`), so the audit and the resume state can never disagree.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.errors import UserError
from reconciler.facts.host import HostFacts
from reconciler.ledger import Ledger, Record
from reconciler.progress import SetProgress
from reconciler.vocabulary import LedgerOutcome, Phase, Scope, Stage, StepKind

#: How many tested builds to remember (enough to roll back a few generations).
TESTED_KEPT = 20
SUBJECT_MAX = 160


def _rollout_path(buildset: str) -> str:
    return f"status/{buildset}/rollout.json"


def _host_path(buildset: str, host: str) -> str:
    return f"status/{buildset}/{host}.json"


#: Quarantined builds, fleet-wide (every reconciler and apply reads the same file).
_QUARANTINE = "status/quarantine.json"


def _set_quarantine_path(buildset: str) -> str:
    return f"status/{buildset}/quarantine.json"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Update:
    """One outcome of a build set's rollout, to become one ledger commit."""

    subject: str
    stage: Stage | Scope
    outcome: LedgerOutcome
    step: StepKind | None = None
    host: str | None = None
    #: the host's new phase (with ``host``): what a resumed run decides from
    phase: Phase | None = None
    body: str = ""
    #: the host's facts for its status file (None: keep the last recorded ones)
    facts: Mapping[str, Any] | None = None
    #: changes to rollout.json's top level (generation, build, status, stage, tested)
    rollout: Mapping[str, Any] = field(default_factory=dict)
    #: extra fields of the host's progress entry (boottime, previous_be, drift_reported)
    host_fields: Mapping[str, Any] = field(default_factory=dict)


class StatusStore:
    """Reads of the status files of one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def progress(self, buildset: str) -> SetProgress:
        found = SetProgress.from_json(self.rollout_document(buildset))
        held = self.quarantined(buildset)
        return replace(found, quarantined=held) if held else found

    def quarantined(self, buildset: str) -> dict[str, str]:
        """build id -> reason, for the builds of ``buildset`` held in quarantine."""
        document = self.ledger.read_json(_QUARANTINE)
        if not isinstance(document, dict):
            return {}
        return {
            build: str(entry.get("reason") or "failed its test stage")
            for build, entry in document.items()
            if isinstance(entry, dict) and entry.get("buildset") == buildset
        }

    def quarantine(self, buildset: str, build: str, generation: str, reason: str) -> str:
        """Hold ``build`` back: a later commit that does not change it does not retry it."""
        document = self._quarantine_document()
        document[build] = {
            "buildset": buildset,
            "generation": generation,
            "reason": reason,
            "since": utc_now(),
        }
        subject, body = one_line(
            f"{buildset}: build {build[:12]} quarantined: {reason}",
            "A commit that changes a build input makes a new build, which is tried; this one "
            f"is tried again only after `reconciler release {buildset} {build[:12]}` (or "
            "`reconciler apply --retry-quarantined`).",
        )
        return self.ledger.record(
            Record(
                subject=subject,
                generation=generation,
                buildset=buildset,
                host=None,
                stage=str(Stage.TEST),
                outcome=str(LedgerOutcome.QUARANTINED),
                build=build,
                body=body,
                files={_QUARANTINE: _dump(document)},
            )
        )

    def release(self, buildset: str, build: str, who: str, generation: str) -> str:
        """Lift a quarantine (a ledger commit naming who released it)."""
        document = self._quarantine_document()
        matches = [
            b for b in document if b.startswith(build) and document[b].get("buildset") == buildset
        ]
        if len(matches) != 1:
            held = ", ".join(b[:12] for b, e in document.items() if e.get("buildset") == buildset)
            raise UserError(
                f"build set {buildset} has no quarantined build {build!r}"
                + (f" (quarantined: {held})" if held else " (none is quarantined)")
            )
        (full,) = matches
        del document[full]
        return self.ledger.record(
            Record(
                subject=f"{buildset}: build {full[:12]} released from quarantine by {who}",
                generation=generation,
                buildset=buildset,
                host=None,
                stage=str(Scope.CONFIG),
                outcome=str(LedgerOutcome.RELEASED),
                build=full,
                files={_QUARANTINE: _dump(document)},
            )
        )

    def _quarantine_document(self) -> dict[str, Any]:
        found = self.ledger.read_json(_QUARANTINE)
        return {
            str(k): dict(v)
            for k, v in (found.items() if isinstance(found, dict) else ())
            if isinstance(v, dict)
        }

    def rollout_document(self, buildset: str) -> Any:
        """status/<set>/rollout.json as stored (None: none), for readers that show it whole."""
        return self.ledger.read_json(_rollout_path(buildset))

    def quarantine_documents(self, buildsets: Iterable[str]) -> list[tuple[str, Any]]:
        """(path, document) of each quarantine file present, fleet-wide first."""
        paths = [_QUARANTINE] + [_set_quarantine_path(name) for name in buildsets]
        found = []
        for path in paths:
            document = self.ledger.read_json(path)
            if document is not None:
                found.append((path, document))
        return found

    def host_status(self, buildset: str, host: str) -> dict[str, Any] | None:
        found = self.ledger.read_json(_host_path(buildset, host))
        return found if isinstance(found, dict) else None

    def recorded_facts(self, buildset: str, host: str) -> HostFacts | None:
        """The facts the host's status file carries (None: none recorded).

        Raises ValueError (with the path) when they are in an unknown format.
        """
        status = self.host_status(buildset, host)
        data = status.get("facts") if status else None
        if not isinstance(data, dict):
            return None
        try:
            return HostFacts.from_json(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"{_host_path(buildset, host)}: facts in an unknown format: {exc}"
            ) from exc

    def all_progress(self, buildsets: Iterable[str]) -> dict[str, SetProgress]:
        """Every named build set's progress (empty ones where nothing is recorded)."""
        if self.ledger.head() is None:
            return {}
        return {name: self.progress(name) for name in buildsets}

    def last_outcome(self, buildset: str, host: str) -> str | None:
        status = self.host_status(buildset, host)
        outcome = status.get("outcome") if status else None
        return str(outcome) if outcome else None

    def writer(
        self,
        buildset: str,
        generation: str,
        build: str | None,
        *,
        quarantine: bool = True,
        packages: str | None = None,
    ) -> SetWriter:
        """``quarantine=False``: this run ignores quarantines (apply --retry-quarantined).

        ``packages``: the set's package set id. It is then what the set's
        progress is keyed by (tested, quarantined, each host's phase): a new
        package set on the same world is a new thing to test and promote. The
        Reconciler-Build trailer stays the world's build id, and each record
        carries a Reconciler-Packages trailer.
        """
        held = self.quarantined(buildset) if quarantine else {}
        return SetWriter(
            self.ledger, buildset, generation, build, quarantined=held, packages=packages
        )

    def adopt(self, buildset: str, generation: str, build: str, hosts: Iterable[str]) -> str:
        """``reconciler init``: the set's hosts run ``build`` as found; it counts as tested."""
        names = list(hosts)
        writer = self.writer(buildset, generation, build)
        entries = {
            name: {"build": build, "phase": str(Phase.DONE), "adopted": True, "since": utc_now()}
            for name in names
        }
        return writer.record(
            Update(
                subject=f"{buildset}: adopted {', '.join(names)} as they run; build "
                f"{build[:12]} counts as installed and tested (reconciler init)",
                stage=Scope.CONFIG,
                outcome=LedgerOutcome.ADOPTED,
                rollout={
                    "generation": generation,
                    "build": build,
                    "outcome": "converged",
                    "stage": "done",
                    "tested": [build],
                    "hosts": entries,
                },
            )
        )

    def fleet_writer(self, generation: str) -> SetWriter:
        """Records of no build set (the shared src host's steps): trailers only, no files."""
        return SetWriter(self.ledger, None, generation, None)


class SetWriter:
    """The rollout.json of one build set's run, changed only through :meth:`record`."""

    def __init__(
        self,
        ledger: Ledger,
        buildset: str | None,
        generation: str,
        build: str | None,
        *,
        quarantined: Mapping[str, str] | None = None,
        packages: str | None = None,
    ) -> None:
        self.ledger = ledger
        self._quarantined = dict(quarantined or {})
        self.buildset = buildset
        self.generation = generation
        #: what progress is keyed by: the package set id when the set has one (it
        #: covers the build id), else the build id
        self.build = packages or build
        self.world_build = build
        self.packages = packages
        self._lock = threading.Lock()
        loaded = ledger.read_json(_rollout_path(buildset)) if buildset else None
        self._data: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        self._data.setdefault("hosts", {})
        self._data.setdefault("tested", [])
        self._facts: dict[str, Mapping[str, Any] | None] = {}

    @property
    def progress(self) -> SetProgress:
        with self._lock:
            found = SetProgress.from_json(self._data)
        return replace(found, quarantined=self._quarantined) if self._quarantined else found

    def tested_change(self, build_id: str) -> dict[str, Any]:
        """The ``rollout`` change that adds ``build_id`` to the tested builds."""
        tested = [b for b in self._data["tested"] if b != build_id] + [build_id]
        return {"tested": tested[-TESTED_KEPT:]}

    def record(self, update: Update) -> str:
        """One ledger commit: the outcome, the updated rollout.json, the host's status file."""
        subject, body = one_line(update.subject, update.body)
        with self._lock:
            self._data.update(update.rollout)
            host = update.host
            if host is not None and update.phase is not None:
                entry = dict(self._data["hosts"].get(host) or {})
                entry.update(update.host_fields)
                entry.update({"build": self.build, "phase": str(update.phase), "since": utc_now()})
                entry["message"] = subject
                self._data["hosts"][host] = entry
            elif host is not None and update.host_fields:
                entry = dict(self._data["hosts"].get(host) or {})
                entry.update(update.host_fields)
                self._data["hosts"][host] = entry
            self._data["updated"] = utc_now()
            files = {}
            if self.buildset is not None:
                files[_rollout_path(self.buildset)] = _dump(self._data)
            if host is not None and self.buildset is not None:
                status: dict[str, Any] = {
                    "host": host,
                    "buildset": self.buildset,
                    "generation": self.generation,
                    "build": self.build,
                    "stage": str(update.stage),
                    "step": str(update.step) if update.step else None,
                    "outcome": str(update.outcome),
                    "phase": str(update.phase) if update.phase is not None else None,
                    "message": subject,
                    "at": utc_now(),
                }
                facts = update.facts if update.facts is not None else self._last_facts(host)
                self._facts[host] = facts
                if facts is not None:
                    status["facts"] = dict(facts)  # `plan --offline` reads these
                files[_host_path(self.buildset, host)] = _dump(status)
            return self.ledger.record(
                Record(
                    subject=subject,
                    generation=self.generation,
                    buildset=self.buildset,
                    host=host,
                    stage=str(update.stage),
                    outcome=str(update.outcome),
                    build=self.world_build,
                    step=str(update.step) if update.step else None,
                    body=body,
                    files=files,
                    packages=self.packages,
                )
            )

    def _last_facts(self, host: str) -> Mapping[str, Any] | None:
        """The facts the host's status file carries (read from the ledger once per run)."""
        if self.buildset is None:
            return None
        if host not in self._facts:
            previous = self.ledger.read_json(_host_path(self.buildset, host))
            found = previous.get("facts") if isinstance(previous, dict) else None
            self._facts[host] = found if isinstance(found, dict) else None
        return self._facts[host]


def one_line(subject: str, body: str = "") -> tuple[str, str]:
    """A commit subject is one short line; what does not fit moves to the body."""
    flat = " ".join(subject.split())
    if flat == subject and len(subject) <= SUBJECT_MAX:
        return subject, body
    short = flat if len(flat) <= SUBJECT_MAX else flat[: SUBJECT_MAX - 3] + "..."
    return short, (subject + ("\n\n" + body if body else "")).strip()


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
