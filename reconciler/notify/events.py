"""Which ledger commits matter, and the signed JSON document that says so (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.ledger import Entry
from reconciler.observe_settings import commit_link
from reconciler.vocabulary import LedgerOutcome, Stage

#: The Reconciler-Outcome of a quarantine record (LedgerOutcome gains it with quarantine).
QUARANTINED = "quarantined"


class Notice(StrEnum):
    """What a notification says happened (the payload's ``event``)."""

    TEST_PASSED = "test.passed"
    TEST_FAILED = "test.failed"
    BUILD_FAILED = "build.failed"
    HOST_FAILED = "host.failed"
    HOST_ROLLED_BACK = "host.rolled-back"
    ROLLOUT_HALTED = "rollout.halted"
    ROLLOUT_CONVERGED = "rollout.converged"
    CONFIG_REJECTED = "config.rejected"
    BUILD_QUARANTINED = "build.quarantined"


def classify(entry: Entry) -> Notice | None:
    """Whether a ledger commit matters, and as what (pure, from its trailers)."""
    stage = entry.stage
    raw = entry.outcome
    if raw == QUARANTINED:
        return Notice.BUILD_QUARANTINED
    try:
        outcome = LedgerOutcome(raw or "")
    except ValueError:
        return None
    match outcome:
        case LedgerOutcome.REJECTED:
            return Notice.CONFIG_REJECTED
        case LedgerOutcome.HALTED:
            return Notice.TEST_FAILED if stage == Stage.TEST else Notice.ROLLOUT_HALTED
        case LedgerOutcome.ROLLED_BACK:
            return Notice.HOST_ROLLED_BACK
        case LedgerOutcome.FAILURE:
            if stage == Stage.BUILD:
                return Notice.BUILD_FAILED
            return Notice.HOST_FAILED if entry.host else Notice.ROLLOUT_HALTED
        case LedgerOutcome.SUCCESS:
            if entry.host is not None:
                return None  # one host healthy: not news; the stage's own record is
            if stage == Stage.TEST:
                return Notice.TEST_PASSED
            if stage == Stage.PRODUCTION:
                return Notice.ROLLOUT_CONVERGED
            return None
        case (
            LedgerOutcome.STARTED
            | LedgerOutcome.DRIFT
            | LedgerOutcome.HEALED
            | LedgerOutcome.VALIDATED
        ):
            return None
    return None  # pragma: no cover - every LedgerOutcome is matched above


def delivery_id(entry: Entry) -> str:
    """Stable across replays of the commit: author time, subject, body and trailers."""
    trailers = "\n".join(f"{k}={v}" for k, v in sorted(entry.trailers.items()))
    text = "\0".join((entry.time.isoformat(), entry.subject, entry.body, trailers))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _public(repo: str) -> str:
    """The repo as a receiver may see it: no password from a URL."""
    parts = urlsplit(repo)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return repo


def payload(entry: Entry, notice: Notice, *, settings: Any, status_branch: str) -> bytes:
    """The JSON document every target gets (the exact bytes that are signed)."""
    data = {
        "event": str(notice),
        "delivery": delivery_id(entry),
        "commit": entry.commit,
        "url": commit_link(str(getattr(settings, "commit_url", "") or ""), entry.commit),
        "time": entry.time.isoformat(),
        "subject": entry.subject,
        "body": entry.body,
        **{key: entry.trailers.get(key) for key in ("generation", "buildset", "host")},
        **{key: entry.trailers.get(key) for key in ("stage", "outcome", "build")},
        "repo": _public(str(getattr(settings, "repo", ""))),
        "branch": str(getattr(settings, "branch", "")),
        "status_branch": status_branch,
    }
    return json.dumps(data, sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """``X-Reconciler-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
