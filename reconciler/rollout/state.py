"""Where a build set's rollout stands, kept in the ledger (status/<set>/rollout.json).

This is the storage a restarted reconciler resumes from (kopf's "progress
storage"): the generation and build being rolled out, the builds that passed
the test stage, and each host's phase. Every change is written as a ledger
commit together with the outcome that caused it, so the audit and the resume
state can never disagree.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from reconciler.ledger import Ledger, Record

#: How many tested builds to remember (enough to roll back a few generations).
TESTED_KEPT = 20


def rollout_path(buildset: str) -> str:
    return f"status/{buildset}/rollout.json"


def host_path(buildset: str, host: str) -> str:
    return f"status/{buildset}/{host}.json"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RolloutState:
    """The rollout.json of one build set, updated only through :meth:`record`."""

    def __init__(self, ledger: Ledger, buildset: str) -> None:
        self.ledger = ledger
        self.buildset = buildset
        self._lock = threading.Lock()
        loaded = ledger.read_json(rollout_path(buildset))
        self.data: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        self.data.setdefault("hosts", {})
        self.data.setdefault("tested", [])
        self._facts: dict[str, dict[str, Any] | None] = {}

    # -- reading ----------------------------------------------------------

    @property
    def generation(self) -> str | None:
        return self.data.get("generation")

    @property
    def build(self) -> str | None:
        return self.data.get("build")

    @property
    def outcome(self) -> str | None:
        return self.data.get("outcome")

    def tested(self, build_id: str) -> bool:
        return build_id in self.data["tested"]

    def phase(self, host: str, build_id: str) -> str:
        """The host's recorded phase for ``build_id`` ("" if none or for another build)."""
        entry = self.data["hosts"].get(host) or {}
        return str(entry.get("phase", "")) if entry.get("build") == build_id else ""

    def host_entry(self, host: str) -> dict[str, Any]:
        return dict(self.data["hosts"].get(host) or {})

    # -- writing ----------------------------------------------------------

    def record(
        self,
        subject: str,
        *,
        generation: str,
        stage: str,
        outcome: str,
        build: str | None = None,
        host: str | None = None,
        phase: str | None = None,
        body: str = "",
        facts: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        host_fields: dict[str, Any] | None = None,
        message: str = "",
    ) -> str:
        """One ledger commit: the outcome, the updated rollout.json, the host's status file."""
        subject, body = one_line(subject, body)
        with self._lock:
            if changes:
                self.data.update(changes)
            if host is not None and phase is not None:
                entry = dict(self.data["hosts"].get(host) or {})
                entry.update(host_fields or {})
                entry.update({"build": build, "phase": phase, "since": utc_now()})
                if message:
                    entry["message"] = message
                self.data["hosts"][host] = entry
            self.data["updated"] = utc_now()
            files = {rollout_path(self.buildset): _dump(self.data)}
            if host is not None:
                status: dict[str, Any] = {
                    "host": host,
                    "buildset": self.buildset,
                    "generation": generation,
                    "build": build,
                    "stage": stage,
                    "outcome": outcome,
                    "phase": phase,
                    "message": message or subject,
                    "at": utc_now(),
                }
                if facts is None:
                    facts = self._last_facts(host)
                self._facts[host] = facts
                if facts is not None:
                    status["facts"] = facts  # `plan --offline` reads these
                files[host_path(self.buildset, host)] = _dump(status)
            return self.ledger.record(
                Record(
                    subject=subject,
                    generation=generation,
                    buildset=self.buildset,
                    host=host,
                    stage=stage,
                    outcome=outcome,
                    build=build,
                    body=body,
                    files=files,
                )
            )

    def _last_facts(self, host: str) -> dict[str, Any] | None:
        """The facts the host's status file carries (read from the ledger once per run)."""
        if host not in self._facts:
            previous = self.ledger.read_json(host_path(self.buildset, host))
            found = previous.get("facts") if isinstance(previous, dict) else None
            self._facts[host] = found if isinstance(found, dict) else None
        return self._facts[host]

    def mark_tested(self, build_id: str) -> dict[str, Any]:
        """The ``changes`` that add ``build_id`` to the tested builds."""
        tested = [b for b in self.data["tested"] if b != build_id] + [build_id]
        return {"tested": tested[-TESTED_KEPT:]}


SUBJECT_MAX = 160


def one_line(subject: str, body: str = "") -> tuple[str, str]:
    """A commit subject is one short line; what does not fit moves to the body."""
    flat = " ".join(subject.split())
    if flat == subject and len(subject) <= SUBJECT_MAX:
        return subject, body
    short = flat if len(flat) <= SUBJECT_MAX else flat[: SUBJECT_MAX - 3] + "..."
    return short, (subject + ("\n\n" + body if body else "")).strip()


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
