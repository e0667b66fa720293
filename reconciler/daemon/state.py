"""What the daemon remembers between polls and across restarts, and the pure decisions on it.

The state is one small JSON file beside the daemon's clone
(``<work_dir>/repos/<name>-<hash>.state.json``), replaced atomically. It says which
generation the daemon accepted last and how that went, and which tip it
refused last, so that:

- a generation that failed is not retried after a restart either, until a
  new commit arrives (Argo CD's lesson: auto-sync re-applied a bad commit);
- a refusal is recorded in the ledger once, not on every poll;
- a daemon killed mid-rollout (status ``applying``) resumes at once.

The facts and the ledger stay the truth about hosts; this file only steers
what the loop does next.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from reconciler.vocabulary import FAILED_HOST_OUTCOMES, HostOutcome

Status = Literal["applying", "converged", "incomplete", "failed"]
Verdict = Literal["converged", "interrupted", "failed", "incomplete"]



@dataclass(frozen=True)
class DaemonState:
    generation: str | None = None  # the commit accepted last (trusted, valid)
    status: Status | None = None
    rejected: str | None = None  # the last tip refused (untrusted or invalid)
    reason: str = ""  # why the last failure or refusal happened
    at: str = ""  # when status last changed (UTC ISO-8601)

    def accepted(self, generation: str) -> DaemonState:
        return replace(self, generation=generation, status="applying", reason="", at=_now())

    def with_status(self, status: Status, reason: str = "") -> DaemonState:
        return replace(self, status=status, reason=reason, at=_now())

    def refused(self, commit: str, reason: str) -> DaemonState:
        return replace(self, rejected=commit, reason=reason, at=_now())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_state(path: Path) -> DaemonState:
    """The saved state; a missing or unreadable file is a fresh start (the facts decide anyway)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DaemonState()
    if not isinstance(data, dict):
        return DaemonState()
    known = {k: v for k, v in data.items() if k in DaemonState.__dataclass_fields__}
    status = known.get("status")
    if status not in (None, "applying", "converged", "incomplete", "failed"):
        known["status"] = None
    try:
        return DaemonState(**known)
    except TypeError:
        return DaemonState()


def save_state(path: Path, state: DaemonState) -> None:
    """Write ``state`` atomically (a crash leaves the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(state), handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def judge(converged: bool, interrupted: bool, outcomes: Iterable[HostOutcome]) -> Verdict:
    """What a finished converge means for the loop.

    - converged: every host is on the generation;
    - interrupted: stopped at a safe point (newer commit, SIGTERM): resume later;
    - failed: a host failed or was rolled back, or the rollout halted before
      any host (source or build stage failed: every host "skipped"): never
      retried until a new commit (a broken build is not rebuilt every poll);
    - incomplete: nothing failed, but not everything is there (a host was
      unreachable): look again at the next poll. Drift left as is under
      ``drift: report`` counts as converged (the engine says so).
    """
    if converged:
        return "converged"
    seen = list(outcomes)
    # A failure counts even when a stop came after it: resuming would retry the failed host.
    if any(outcome in FAILED_HOST_OUTCOMES for outcome in seen):
        return "failed"
    if not interrupted and seen and all(outcome == HostOutcome.SKIPPED for outcome in seen):
        return "failed"
    if interrupted:
        return "interrupted"
    return "incomplete"
