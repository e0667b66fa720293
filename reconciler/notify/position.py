"""How far a target got in the ledger, stored atomically; what is still to deliver (pure)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from reconciler.ledger import Entry
from reconciler.notify.events import delivery_id

#: Delivery ids remembered per target (replays land within a few commits of the original).
REMEMBERED = 256


@dataclass(frozen=True)
class Position:
    """How far one target got: the last ledger commit handled and recent deliveries."""

    commit: str | None = None
    id: str | None = None
    time: str | None = None  # author time of that commit, or when the target was enabled
    delivered: tuple[str, ...] = ()

    def after(self, entry: Entry, delivered: bool) -> Position:
        ids = (*self.delivered, delivery_id(entry)) if delivered else self.delivered
        return Position(entry.commit, delivery_id(entry), entry.time.isoformat(), ids[-REMEMBERED:])


def load_position(path: Path) -> Position | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    delivered = data.get("delivered")
    return Position(
        commit=data.get("commit") if isinstance(data.get("commit"), str) else None,
        id=data.get("id") if isinstance(data.get("id"), str) else None,
        time=data.get("time") if isinstance(data.get("time"), str) else None,
        delivered=tuple(d for d in delivered if isinstance(d, str))
        if isinstance(delivered, list)
        else (),
    )


def save_position(path: Path, position: Position) -> None:
    """Atomically: a crash leaves the old position or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".position-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({**asdict(position), "delivered": list(position.delivered)}, handle)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pending(entries: Sequence[Entry], position: Position) -> tuple[list[Entry], bool]:
    """Entries after ``position``, oldest first, and whether the position was found.

    ``entries`` is the branch newest first. The position is found by its
    commit, or by its delivery id (the commit was replayed); when it is not
    among ``entries``, everything at or after its time counts. Entries whose
    delivery id was already delivered are left out either way.
    """
    newer: list[Entry] = []
    found = False
    for entry in entries:
        if position.commit is not None and (
            entry.commit == position.commit or delivery_id(entry) == position.id
        ):
            found = True
            break
        newer.append(entry)
    if not found and position.time is not None:
        since = datetime.fromisoformat(position.time)
        newer = [e for e in newer if e.time >= since]
    done = set(position.delivered)
    return [e for e in reversed(newer) if delivery_id(e) not in done], found
