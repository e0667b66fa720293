"""Replicas: the build sets this ``reconciler run`` holds a lease on, kept in a thread.

With ``replica_id`` set, several daemons share one config repo's build sets
(reconciler.lease: the leases, their refs, the skew margin and who takes
what). :class:`LeaseKeeper` runs one round every ``lease_seconds / 5``:
read every lease from the config repo's server (one fetch), renew this
replica's presence and the sets it holds, take the free sets it is first in
line for, release the sets that left the config (one push, each ref its own
compare-and-swap). It wakes the loop when what it holds changes.

:meth:`LeaseKeeper.holds` is the engine's ``may_continue``: False as soon as
a renewal of the set failed (pushed and refused, or the server unreachable),
or the lease is within the skew margin of its expiry, so the set starts no
new step. On SIGTERM the keeper releases what it holds after the running
steps finished (``close``), so another replica takes over at its next round;
a killed replica's leases simply expire.

:func:`failed_in_ledger` lets a replica that takes a set over respect a
failure the previous holder recorded: a failed generation is not retried
until a new commit, whichever replica sees it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from reconciler.daemon.jobs import JobKind
from reconciler.daemon.logs import EventLog
from reconciler.daemon.state import Status
from reconciler.errors import UserError
from reconciler.lease import (
    LEASES,
    REPLICAS,
    Choice,
    Lease,
    Leases,
    LeaseStore,
    Swap,
    choose,
    renew_interval,
    skew_margin,
)
from reconciler.progress import SetProgress
from reconciler.vocabulary import Phase, RolloutStatus


@dataclass(frozen=True)
class Holding:
    """What the keeper holds, as the loop and the status page see it."""

    sets: frozenset[str]  # sets on which a step may start now
    stale: frozenset[str]  # held, but the last renewal failed: no new step


class LeaseKeeper:
    """This replica's leases, renewed in a background thread (or round by round in tests)."""

    def __init__(
        self,
        store: LeaseStore,
        replica_id: str,
        lease_seconds: float,
        *,
        log: EventLog,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.replica_id = replica_id
        self.lease_seconds = float(lease_seconds)
        self.margin = skew_margin(self.lease_seconds)
        self.interval = renew_interval(self.lease_seconds)
        #: this process: a restarted replica (or a second one by mistake) is another holder
        self.instance = secrets.token_hex(6)
        self.log = log
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._wanted: tuple[str, ...] = ()
        self._held: dict[str, Lease] = {}
        self._stale: set[str] = set()
        self._presence: Lease | None = None
        self._present_since: float | None = None
        self._free_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    # --- what the loop asks ----------------------------------------------------------

    def want(self, sets: Iterable[str]) -> None:
        """The build sets of the config being applied; a round follows soon if they changed."""
        wanted = tuple(dict.fromkeys(sets))
        with self._lock:
            changed, self._wanted = wanted != self._wanted, wanted
        if changed:
            self._kick.set()

    def holds(self, name: str) -> bool:
        """Whether a step of ``name`` may start now (the engine's ``may_continue``)."""
        with self._lock:
            lease = self._held.get(name)
            if lease is None or name in self._stale:
                return False
        return lease.valid_for(self.replica_id, self.instance, self._clock(), self.margin)

    def holding(self) -> Holding:
        with self._lock:
            names = list(self._held)
            stale = frozenset(self._stale)
        return Holding(frozenset(n for n in names if self.holds(n)), stale)

    # --- the thread --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leases", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            try:
                self.round()
            except Exception as exc:  # a bug here must not kill the thread: no renewal = no steps
                self.log.error("lease.error", f"lease round failed: {exc!r}", exc=True)
                self._mark_stale(set(self._held))
            self._kick.wait(self.interval)
            self._stop.wait(0.05)  # a burst of kicks costs one round each, not a spin

    def close(self) -> None:
        """Stop renewing and release every lease this process holds (best effort)."""
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            held = list(self._held.values())
            presence = self._presence
            self._held.clear()
        swaps = [Swap(LEASES + lease.name, lease.commit, None) for lease in held]
        if presence is not None:
            swaps.append(Swap(REPLICAS + self.replica_id, presence.commit, None))
        try:
            results = self.store.swap(swaps)
        except UserError as exc:
            self.log.warning("lease.release", f"cannot release leases: {exc}; they expire")
            return
        for lease in held:
            if not results.get(LEASES + lease.name):
                self.log.info("lease.released", f"released build set {lease.name}",
                              buildset=lease.name)  # fmt: skip

    # --- one round -----------------------------------------------------------------------

    def _lease(self, name: str, now: float, acquired: float | None) -> Lease:
        draft = Lease(name, self.replica_id, self.instance, acquired or now,
                      now + self.lease_seconds, "")  # fmt: skip
        return replace(draft, commit=self.store.write(draft))

    def _mark_stale(self, names: set[str]) -> None:
        with self._lock:
            before = set(self._stale)
            self._stale |= names & set(self._held)
            changed = self._stale != before
        if changed:
            self._on_change()

    def round(self) -> None:
        """Read the leases, renew, take, release (see the module doc)."""
        self.rounds += 1
        now = self._clock()
        try:
            leases = self.store.read()
        except UserError as exc:
            self.log.warning("lease.read", f"{exc}; no new steps until the leases are renewed")
            self._mark_stale(set(self._held))
            return
        mine = leases.replicas.get(self.replica_id)
        if mine is not None and mine.instance != self.instance and not mine.expired(now, 0):
            self.log.warning(
                "lease.conflict",
                f"the presence lease of replica {self.replica_id} is another process's (this "
                "replica's previous run, or a second process with the same replica_id: give "
                "each its own); waiting for it to expire",
            )
            self._mark_stale(set(self._held))
            return
        with self._lock:
            wanted = self._wanted
        choice = choose(
            me=self.replica_id, instance=self.instance, now=now,
            lease_seconds=self.lease_seconds, sets=wanted, leases=leases,
            present_since=self._present_since, free_since=self._free_since,
        )  # fmt: skip
        presence = self._lease(self.replica_id, now, self._present_since)
        swaps = [Swap(REPLICAS + self.replica_id, mine.commit if mine else None, presence.commit)]
        new: dict[str, Lease] = {}
        for name in (*choice.renew, *choice.take):
            old = leases.sets.get(name)
            ours = old is not None and old.holder == self.replica_id
            new[name] = self._lease(name, now, old.acquired if ours and old else None)
            swaps.append(Swap(LEASES + name, old.commit if old else None, new[name].commit))
        for name in choice.release:
            swaps.append(Swap(LEASES + name, leases.sets[name].commit, None))
        try:
            results = self.store.swap(swaps)
        except UserError as exc:
            results = {s.ref: str(exc) for s in swaps}
        self._apply(now, leases, choice, presence, new, results)

    def _apply(
        self,
        now: float,
        leases: Leases,
        choice: Choice,
        presence: Lease,
        new: dict[str, Lease],
        results: dict[str, str],
    ) -> None:
        before = self.holding()
        refused = results.get(REPLICAS + self.replica_id)
        if not refused:
            self._presence = presence
            if self._present_since is None:
                self._present_since = now
        gained, lost = [], []
        with self._lock:
            for name, lease in new.items():
                why = results.get(LEASES + name, "not pushed")
                if not why:
                    if name not in self._held:
                        gained.append(name)
                    self._held[name] = lease
                    self._stale.discard(name)
                elif name in self._held:
                    self._stale.add(name)  # renewal refused: no new step, try again next round
                    self.log.warning("lease.renew", f"cannot renew the lease on {name}: {why}; "
                                     "no new steps on it", buildset=name)  # fmt: skip
            landed = {n for n in new if not results.get(LEASES + n, "not pushed")}
            for name in list(self._held):
                if name in landed:
                    continue  # renewed or taken just now: what was read before is history
                other = leases.sets.get(name)
                taken = other is not None and other.instance != self.instance
                released = not results.get(LEASES + name, "x") and name not in new
                if taken or released or name not in self._wanted:
                    del self._held[name]
                    self._stale.discard(name)
                    if taken:
                        lost.append(name)
            for name in self._wanted:
                seen = leases.sets.get(name)
                if seen is None or seen.expired(now, self.margin):
                    self._free_since.setdefault(name, now)
                else:
                    self._free_since.pop(name, None)
        for name in gained:
            self.log.info("lease.taken", f"holding build set {name} (replica {self.replica_id})",
                          buildset=name)  # fmt: skip
        for name in lost:
            self.log.warning("lease.lost", f"build set {name} is held by another replica now",
                             buildset=name)  # fmt: skip
        if self.holding() != before:
            self._on_change()


def failed_in_ledger(progress: SetProgress, generation: str) -> str | None:
    """Why a set's rollout of ``generation`` counts as failed in the ledger (None: it does not)."""
    if progress.generation != generation:
        return None
    if progress.status == RolloutStatus.FAILED:
        return "the rollout halted (recorded by the replica that held the set)"
    failed = [
        name
        for name, host in progress.hosts.items()
        if host.phase == Phase.FAILED and host.build == progress.build
    ]
    if failed:
        return f"{', '.join(sorted(failed))} failed (recorded by the replica that held the set)"
    return None


#: What a build set's rollout of the current generation came to, on this replica.
SetStatus = Status


class SetShare:
    """Per build set, how this replica's rollout of the current generation went.

    The loop asks :meth:`due` which of the held sets need a job now: a set
    not tried yet on this generation (just taken, just accepted, interrupted)
    is applied; an incomplete one again at each poll; a converged one is
    re-checked for drift at each poll; a failed one waits for a new commit.
    """

    def __init__(self) -> None:
        self.status: dict[str, SetStatus] = {}
        self.reasons: dict[str, str] = {}

    def new_generation(self) -> None:
        self.status.clear()
        self.reasons.clear()

    def due(self, held: Iterable[str], poll_due: bool) -> list[tuple[JobKind, str]]:
        """(kind, set) for each held set that needs a job: kind ``apply`` or ``drift``."""
        jobs: list[tuple[JobKind, str]] = []
        for name in sorted(held):
            status = self.status.get(name)
            if status is None or (status == "incomplete" and poll_due):
                jobs.append(("apply", name))
            elif status == "converged" and poll_due:
                jobs.append(("drift", name))
        return jobs

    def finished(self, name: str, status: SetStatus | None, reason: str = "") -> None:
        """``status`` None: interrupted (a newer commit, SIGTERM, the lease lapsed): try again."""
        if status is None:
            self.status.pop(name, None)
        else:
            self.status[name] = status
        self.reasons[name] = reason

    def forget(self, keep: Iterable[str]) -> None:
        """Sets this replica no longer holds: decided afresh (from the ledger) if taken again."""
        kept = set(keep)
        for name in [n for n in self.status if n not in kept]:
            self.status.pop(name, None)
            self.reasons.pop(name, None)

    def overall(self, held: Iterable[str]) -> tuple[Status, str]:
        """The daemon's one status over the held sets: failed > incomplete > converged."""
        names = sorted(held)
        known = [self.status.get(n) for n in names]
        for wanted in ("failed", "incomplete"):
            hit = [n for n, s in zip(names, known, strict=True) if s == wanted]
            if hit:
                reason = "; ".join(f"{n}: {self.reasons.get(n, '')}" for n in hit)
                return ("failed" if wanted == "failed" else "incomplete"), reason
        if any(s is None for s in known):
            return "applying", ""
        return "converged", ""
