"""What one ledger commit says: the record written, the entry read back.

The message layout (subject, optional body, ``Reconciler-*`` trailers) is
described in :mod:`reconciler.ledger`; this module writes it and parses it
back from ``git log``, and knows nothing of branches or remotes.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.errors import LedgerError

#: Record attribute -> trailer key, in the order they are written.
TRAILERS = (
    ("generation", "Reconciler-Generation"),
    ("buildset", "Reconciler-Buildset"),
    ("host", "Reconciler-Host"),
    ("stage", "Reconciler-Stage"),
    ("outcome", "Reconciler-Outcome"),
    ("build", "Reconciler-Build"),
    ("step", "Reconciler-Step"),
    ("packages", "Reconciler-Packages"),
    ("actor", "Reconciler-Actor"),
    ("command", "Reconciler-Command"),
)
_PREFIX = "reconciler-"
#: What :func:`parse_log` reads: sha, date, subject, body, trailers.
LOG_FORMAT = "%H%x00%aI%x00%s%x00%b%x00%(trailers:only,unfold)%x00"


@dataclass(frozen=True)
class Record:
    """One outcome, to become one commit on the status branch."""

    subject: str
    generation: str  # config repo commit (40 hex) or "worktree"
    buildset: str | None
    host: str | None
    stage: str | None  # source|build|test|production|config|daemon
    # success|failure|started|rolled-back|halted|rejected|validated|drift|healed|skipped
    outcome: str
    build: str | None = None
    body: str = ""
    files: Mapping[str, str] = field(default_factory=dict, hash=False)  # tree path -> text
    step: str | None = None  # the plan step kind this outcome belongs to
    actor: str | None = None  # <user>@<host> that wrote it (default: the ledger's)
    command: str | None = None  # apply, run, init, release ... (default: the ledger's)
    packages: str | None = None  # the package set id the outcome belongs to (issue 11)

    def message(self) -> str:
        """The commit message: subject, optional body, trailers."""
        subject = " ".join(self.subject.split())
        if not subject:
            raise LedgerError("a ledger record needs a subject")
        lines = []
        for attr, key in TRAILERS:
            value = getattr(self, attr)
            if value is None:
                continue
            value = str(value)
            if not value or value != value.strip() or "\n" in value:
                raise LedgerError(f"ledger trailer {key} must be one non-empty line, not {value!r}")
            lines.append(f"{key}: {value}")
        parts = [subject]
        body = self.body.strip("\n")
        if body.strip():
            parts.append(body)
        parts.append("\n".join(lines))
        return "\n\n".join(parts) + "\n"


class _Trailer:
    """An :class:`Entry` attribute that reads the ``Reconciler-<name>`` trailer of its name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = name

    def __get__(self, entry: Entry | None, owner: type | None = None) -> str | None:
        return None if entry is None else entry.trailers.get(self.key)


@dataclass(frozen=True)
class Entry:
    """One ledger commit, read back."""

    commit: str
    time: datetime  # author date: when the outcome was recorded
    subject: str
    body: str
    # Reconciler-* keys without the prefix, lower-case
    trailers: Mapping[str, str] = field(hash=False)

    outcome = _Trailer()
    host = _Trailer()
    buildset = _Trailer()
    stage = _Trailer()
    generation = _Trailer()
    build = _Trailer()
    step = _Trailer()
    actor = _Trailer()
    packages = _Trailer()
    command = _Trailer()


def default_actor() -> str:
    """``<user>@<host>`` of this process, for the Reconciler-Actor trailer."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container without /etc/passwd entry)
        user = str(os.getuid())
    host = socket.gethostname() or "localhost"
    return "".join(f"{user}@{host}".split()) or "unknown"


def parse_log(out: str) -> Iterator[Entry]:
    """Entries from ``git log --format=LOG_FORMAT`` output."""
    fields = out.split("\0")
    for i in range(0, len(fields) - 4, 5):
        commit, date, subject, body, trailer_text = fields[i : i + 5]
        trailers: dict[str, str] = {}
        for line in trailer_text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower().startswith(_PREFIX):
                trailers[key.strip().lower()[len(_PREFIX) :]] = value.strip()
        yield Entry(
            commit=commit.strip(),
            time=datetime.fromisoformat(date),
            subject=subject,
            body=_strip_trailer_block(body) if trailer_text.strip() else body.strip("\n"),
            trailers=trailers,
        )


def _strip_trailer_block(body: str) -> str:
    """The body without its last paragraph, which git recognised as the trailers."""
    paragraphs = re.split(r"\n[ \t]*\n", body.strip("\n"))
    return "\n\n".join(paragraphs[:-1]).strip("\n")
