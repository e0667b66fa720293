"""The notifier's threads: one per target, each walking the ledger from its own position.

A thread wakes when the daemon says the ledger may have moved (:meth:`Notifier.wake`)
and at least every ``poll`` seconds; it reads the local ledger only (no fetch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.ledger import Entry, Ledger
from reconciler.logsink import Log, PlainLog
from reconciler.notify.events import Notice, classify, delivery_id, payload
from reconciler.notify.position import Position, load_position, pending, save_position
from reconciler.notify.targets import DeliveryFailed, Target

#: First window of ledger commits read per look; grows while the position is not in it.
FIRST_WINDOW = 64
MAX_WINDOW = 16384
BACKOFF_CAP = 60.0
SETTLE = 0.2


class Notifier:
    """``start()`` once, ``wake()`` whenever the ledger may have moved, ``close()`` at the end."""

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        ledger: Callable[[], Ledger],
        positions: Path,
        settings: Any,
        log: Log | None = None,
        attempts: int = 5,
        counted: Callable[[str, str], None] = lambda kind, result: None,
        poll: float = 2.0,
        backoff: float = 1.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.targets = list(targets)
        self._ledger = ledger
        self.positions = positions
        self._settings = settings
        self.log: Log = log or PlainLog()
        self._attempts = max(1, attempts)
        self._counted = counted
        self._poll = poll
        self._backoff = backoff
        self._now = now
        self._stop = threading.Event()
        self._wakes = {t.key: threading.Event() for t in self.targets}
        self._idle = {t.key: threading.Event() for t in self.targets}
        self._threads: list[threading.Thread] = []

    def position_file(self, target: Target) -> Path:
        return self.positions / f"{target.key}.json"

    def start(self) -> Notifier:
        """Load (or begin) every target's position, then start its thread."""
        for target in self.targets:
            path = self.position_file(target)
            position = load_position(path)
            if position is None:
                # Enabled now: what the ledger held before is history, not news. Whole
                # seconds, as git keeps author times: nothing recorded this second is lost.
                since = self._now().replace(microsecond=0)
                position = Position(time=since.isoformat())
                save_position(path, position)
                self.log.info(
                    "notify.start",
                    f"notifications to {target.label} start with ledger commits from "
                    f"{since.isoformat()}",
                    target=target.kind,
                )
            thread = threading.Thread(
                target=self._run, args=(target, position), name=f"notify-{target.kind}",
                daemon=True,
            )  # fmt: skip
            self._threads.append(thread)
            thread.start()
        return self

    def wake(self) -> None:
        for event in self._wakes.values():
            event.set()

    def close(self, drain: float = 5.0, timeout: float = 15.0) -> None:
        """Deliver what is pending for up to ``drain`` seconds, then stop.

        A delivery under way finishes (its retries do not); whatever is left
        is delivered after the next start, from the stored positions.
        """
        for event in self._idle.values():
            event.clear()
        self.wake()
        for event in self._idle.values():
            event.wait(drain)
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)

    # --- one target's thread ---------------------------------------------------------

    def _run(self, target: Target, position: Position) -> None:
        wake = self._wakes[target.key]
        while not self._stop.is_set():
            wake.clear()
            try:
                ledger = self._ledger()
                todo = self._pending(ledger, position)
            except ReconcilerError as exc:
                self.log.warning("notify.ledger", f"cannot read the ledger: {exc}")
                todo, ledger = [], None
            moved = position
            for entry in todo:
                notice = classify(entry)
                if notice is None:
                    moved = moved.after(entry, delivered=False)
                    continue
                assert ledger is not None
                if not self._deliver(target, entry, notice, ledger.branch):
                    break  # stopping: this one and the rest wait for the next start
                moved = moved.after(entry, delivered=True)
                self._save(target, moved)
                position = moved
            if moved != position:
                self._save(target, moved)
                position = moved
            if not todo:
                self._idle[target.key].set()  # caught up with the tip (close() waits for this)
            # Progress events wake us often (every build line): one look per SETTLE at most.
            if not self._stop.wait(SETTLE):
                wake.wait(self._poll)

    def _pending(self, ledger: Ledger, position: Position) -> list[Entry]:
        limit = FIRST_WINDOW
        while True:
            entries = ledger.entries(limit=limit)
            todo, found = pending(entries, position)
            if found or len(entries) < limit or limit >= MAX_WINDOW:
                return todo
            since = datetime.fromisoformat(position.time) if position.time else None
            if since is not None and entries[-1].time < since:
                return todo  # the window reaches back past the position's time
            limit *= 4

    def _save(self, target: Target, position: Position) -> None:
        try:
            save_position(self.position_file(target), position)
        except OSError as exc:
            self.log.error(
                "notify.position",
                f"cannot save {self.position_file(target)}: {exc.strerror or exc}; "
                "a restart may repeat notifications",
            )

    def _deliver(self, target: Target, entry: Entry, notice: Notice, branch: str) -> bool:
        """Try up to ``attempts`` times; False only when stopped before the end."""
        body = payload(entry, notice, settings=self._settings, status_branch=branch)
        delivery = delivery_id(entry)
        fields: dict[str, Any] = {
            "target": target.kind,
            "commit": entry.commit,
            "notice": str(notice),
        }
        for attempt in range(1, self._attempts + 1):
            try:
                target.deliver(notice, delivery, body)
            except DeliveryFailed as exc:
                self._counted(target.kind, "failed")
                if attempt == self._attempts:
                    self._counted(target.kind, "gave-up")
                    self.log.error(
                        "notify.gave-up",
                        f"{notice} for ledger commit {entry.commit[:12]} not delivered to "
                        f"{target.label} after {attempt} tries: {exc}",
                        **fields,
                    )
                    return True
                delay = min(BACKOFF_CAP, self._backoff * 2 ** (attempt - 1))
                self.log.warning(
                    "notify.retry",
                    f"{notice} to {target.label}: {exc}; try {attempt + 1} of "
                    f"{self._attempts} in {delay:g}s",
                    **fields,
                )
                if self._stop.wait(delay):
                    return False
                continue
            self._counted(target.kind, "delivered")
            self.log.info(
                "notify.delivered", f"{notice}: {entry.subject} -> {target.label}", **fields
            )
            return True
        return True
