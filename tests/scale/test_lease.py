"""Leases on build sets (reconciler.lease, reconciler.daemon.replicas) against real git repos.

No hosts: a bare "server" repo, replicas' clones pushing to it, injected clocks.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest

from reconciler.daemon.logs import EventLog
from reconciler.daemon.replicas import LeaseKeeper, SetShare, failed_in_ledger
from reconciler.gitutil import git, scrubbed_env
from reconciler.lease import (
    LEASES,
    Lease,
    Leases,
    LeaseStore,
    Swap,
    choose,
    rank,
    renew_interval,
    skew_margin,
)
from reconciler.progress import SetProgress

L = 10.0  # lease seconds in these tests: margin 1 s, renewal every 2 s


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def init(path: Path, *, bare: bool) -> Path:
    args = ["git", "init", "-q", *(["--bare"] if bare else []), str(path)]
    subprocess.run(args, check=True, env=scrubbed_env())
    return path


@pytest.fixture
def server(tmp_path: Path) -> Path:
    return init(tmp_path / "config.git", bare=True)


def replica_store(tmp_path: Path, server: Path, name: str) -> LeaseStore:
    clone = init(tmp_path / f"{name}.git", bare=True)
    git(clone, "remote", "add", "origin", str(server))
    return LeaseStore(clone, remote="origin")


def keeper(store: LeaseStore, name: str, clock: Clock, sets: tuple[str, ...]) -> LeaseKeeper:
    k = LeaseKeeper(store, name, L, log=EventLog(), clock=clock)
    k.want(sets)
    return k


def lease(name: str, holder: str, expires: float, instance: str = "i1") -> Lease:
    return Lease(name, holder, instance, expires - L, expires, "0" * 40)


def test_the_margins_follow_the_lease() -> None:
    assert skew_margin(60) == 6 and renew_interval(60) == 12


def test_expiry_and_skew_margin() -> None:
    held = lease("lab", "a", expires=100.0)
    m = skew_margin(L)
    # The holder stops starting steps a margin before expiry, by its own clock ...
    assert held.valid_for("a", "i1", 100.0 - m - 0.01, m)
    assert not held.valid_for("a", "i1", 100.0 - m, m)
    assert not held.valid_for("a", "other-process", 95.0, m)
    assert not held.valid_for("b", "i1", 95.0, m)
    # ... and another replica takes it only a margin after expiry, by its clock.
    assert not held.expired(100.0 + m, m)
    assert held.expired(100.0 + m + 0.01, m)
    # Clocks apart by at most the margin: the holder has stopped before anyone may take over.
    for skew in (-m, 0.0, m):
        holder_stops = 100.0 - m  # holder's clock
        other_takes = 100.0 + m - skew  # the same moment on the holder's clock
        assert holder_stops <= other_takes


def test_a_lease_round_trips_through_a_commit(tmp_path: Path) -> None:
    repo = init(tmp_path / "local.git", bare=True)
    store = LeaseStore(repo)
    draft = Lease("lab", "replica-a", "tok", 1000.5, 1060.5, "")
    sha = store.write(draft)
    assert store.swap([Swap(LEASES + "lab", None, sha)]) == {LEASES + "lab": ""}
    (read,) = store.read().sets.values()
    assert read == Lease("lab", "replica-a", "tok", 1000.5, 1060.5, sha)
    subject = git(repo, "log", "-1", "--format=%s", LEASES + "lab")
    assert subject == "lease lab: held by replica-a until 1970-01-01T00:17:40Z"


def test_local_compare_and_swap_has_one_winner(tmp_path: Path) -> None:
    repo = init(tmp_path / "local.git", bare=True)
    store = LeaseStore(repo)
    first = store.write(Lease("lab", "a", "1", 1.0, 11.0, ""))
    second = store.write(Lease("lab", "b", "2", 1.0, 11.0, ""))
    assert store.swap([Swap(LEASES + "lab", None, first)])[LEASES + "lab"] == ""
    # b read "no lease" before a's swap: its create must fail.
    assert store.swap([Swap(LEASES + "lab", None, second)])[LEASES + "lab"] != ""
    # A renewal against a stale sha fails too; against the current one it lands.
    third = store.write(Lease("lab", "b", "2", 1.0, 12.0, ""))
    assert store.swap([Swap(LEASES + "lab", second, third)])[LEASES + "lab"] != ""
    assert store.swap([Swap(LEASES + "lab", first, third)])[LEASES + "lab"] == ""
    assert store.read().sets["lab"].holder == "b"


def test_remote_cas_loser_and_independent_refs(tmp_path: Path, server: Path) -> None:
    a, b = replica_store(tmp_path, server, "a"), replica_store(tmp_path, server, "b")
    assert a.read() == Leases({}, {}) == b.read()
    la = a.write(Lease("lab", "a", "1", 1.0, 11.0, ""))
    lb = b.write(Lease("lab", "b", "2", 1.0, 11.0, ""))
    db = b.write(Lease("db", "b", "2", 1.0, 11.0, ""))
    assert a.swap([Swap(LEASES + "lab", None, la)]) == {LEASES + "lab": ""}
    # b lost "lab" (a created it first) but its "db" in the same push lands.
    results = b.swap([Swap(LEASES + "lab", None, lb), Swap(LEASES + "db", None, db)])
    assert results[LEASES + "db"] == ""
    assert "stale info" in results[LEASES + "lab"]
    seen = b.read().sets
    assert (seen["lab"].holder, seen["db"].holder) == ("a", "b")
    # Many racers on one free lease: exactly one wins.
    racers = [replica_store(tmp_path, server, f"r{i}") for i in range(5)]
    commits = [r.write(Lease("web", f"r{i}", str(i), 1.0, 11.0, "")) for i, r in enumerate(racers)]
    outcomes: list[str] = [""] * len(racers)
    barrier = threading.Barrier(len(racers))

    def race(i: int) -> None:
        barrier.wait()
        outcomes[i] = racers[i].swap([Swap(LEASES + "web", None, commits[i])])[LEASES + "web"]

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(racers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(1 for o in outcomes if o == "") == 1, outcomes
    winner = outcomes.index("")
    assert a.read().sets["web"].holder == f"r{winner}"


def test_choose_spreads_sets_by_rank_and_waits_for_presence() -> None:
    now = 500.0
    replicas = {n: lease(n, n, now + 5) for n in ("a", "b", "c")}
    leases = Leases({}, replicas)
    sets = [f"set{i}" for i in range(12)]
    taken: dict[str, str] = {}
    for me in ("a", "b", "c"):
        # Not present for a renewal interval yet: takes nothing.
        early = choose(me=me, instance="i1", now=now, lease_seconds=L, sets=sets,
                       leases=leases, present_since=now - 1, free_since={})  # fmt: skip
        assert early.take == ()
        choice = choose(me=me, instance="i1", now=now, lease_seconds=L, sets=sets,
                        leases=leases, present_since=now - 3, free_since={})  # fmt: skip
        for name in choice.take:
            assert name not in taken
            taken[name] = me
    assert sorted(taken) == sorted(sets)  # each set exactly once
    for name, holder in taken.items():
        assert holder == max("abc", key=lambda r: rank(name, r))
    assert len(set(taken.values())) > 1  # spread, not one replica taking all


def test_choose_respects_live_leases_and_takes_expired_ones() -> None:
    now = 500.0
    m = skew_margin(L)
    base = dict(me="a", instance="i1", now=now, lease_seconds=L, present_since=0.0)
    held_by_b = Leases({"lab": lease("lab", "b", now - m + 0.5)}, {})
    assert choose(sets=["lab"], leases=held_by_b, free_since={}, **base).take == ()  # type: ignore[arg-type]
    expired = Leases({"lab": lease("lab", "b", now - m - 0.5)}, {})
    assert choose(sets=["lab"], leases=expired, free_since={}, **base).take == ("lab",)  # type: ignore[arg-type]
    # A live replica ranked first keeps a free set for itself for one lease ...
    name = next(f"s{i}" for i in range(100) if rank(f"s{i}", "z") > rank(f"s{i}", "a"))
    live_z = Leases({}, {"z": lease("z", "z", now + 5)})
    assert choose(sets=[name], leases=live_z, free_since={name: now - 1}, **base).take == ()  # type: ignore[arg-type]
    # ... after which anyone takes it (z may not know the set yet).
    late = choose(sets=[name], leases=live_z, free_since={name: now - L}, **base)  # type: ignore[arg-type]
    assert late.take == (name,)
    # Ours: renewed; ours but out of the config: released.
    mine = Leases({"lab": lease("lab", "a", now + 3), "old": lease("old", "a", now + 3)}, {})
    choice = choose(sets=["lab"], leases=mine, free_since={}, **base)  # type: ignore[arg-type]
    assert (choice.renew, choice.take, choice.release) == (("lab",), (), ("old",))


def test_keepers_share_sets_and_take_over_after_expiry(tmp_path: Path, server: Path) -> None:
    clock = Clock()
    sets = ("lab", "db", "web", "ci")
    a = keeper(replica_store(tmp_path, server, "a"), "a", clock, sets)
    b = keeper(replica_store(tmp_path, server, "b"), "b", clock, sets)
    for _ in range(2):  # presence first, sets from the second round on
        a.round()
        b.round()
        clock.t += renew_interval(L)
    a.round()
    b.round()
    held_a, held_b = a.holding().sets, b.holding().sets
    assert held_a | held_b == set(sets) and not held_a & held_b
    assert all(a.holds(s) for s in held_a) and not any(b.holds(s) for s in held_a)
    # a dies (no more rounds): b renews and waits out a's leases, then takes them all.
    expiry = max(lease.expires for lease in LeaseStore(server).read().sets.values())
    while clock.t <= expiry + skew_margin(L):
        assert b.holding().sets == held_b, clock.t
        clock.t += 0.5
        b.round()
    assert b.holding().sets == set(sets)  # taken in the first round past expiry + margin
    assert {lease.holder for lease in LeaseStore(server).read().sets.values()} == {"b"}
    # a comes back from a pause: its leases are gone, and it says so at once.
    assert not any(a.holds(s) for s in held_a)  # expired by its own clock too
    a.round()
    assert a.holding().sets == frozenset()


def test_a_refused_renewal_stops_new_steps_at_once(tmp_path: Path, server: Path) -> None:
    clock = Clock()
    a = keeper(replica_store(tmp_path, server, "a"), "a", clock, ("lab",))
    a.round()
    clock.t += renew_interval(L)
    a.round()
    assert a.holds("lab")
    hook = server / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'leases are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    clock.t += 0.1  # long before expiry
    a.round()
    assert not a.holds("lab")  # the push was refused: no new step, though the lease runs on
    hook.unlink()
    a.round()
    assert a.holds("lab")  # renewed again


def test_release_on_close_frees_the_set_for_the_next_round(tmp_path: Path, server: Path) -> None:
    clock = Clock()
    a = keeper(replica_store(tmp_path, server, "a"), "a", clock, ("lab",))
    a.round()
    clock.t += renew_interval(L)
    a.round()
    assert a.holds("lab")
    a.close()
    assert LeaseStore(server).read() == Leases({}, {})


def test_set_share_and_failures_in_the_ledger() -> None:
    share = SetShare()
    assert share.due({"lab", "db"}, poll_due=False) == [("apply", "db"), ("apply", "lab")]
    share.finished("lab", "converged")
    share.finished("db", "failed", "db2 failed")
    assert share.due({"lab", "db"}, poll_due=False) == []
    assert share.due({"lab", "db"}, poll_due=True) == [("drift", "lab")]
    assert share.overall({"lab", "db"}) == ("failed", "db: db2 failed")
    share.forget({"lab"})
    assert share.due({"lab", "db"}, poll_due=False) == [("apply", "db")]
    gen = "1" * 40
    hosts = {"web1": {"build": "b1", "phase": "failed"}}
    running = SetProgress.from_json(
        {"generation": gen, "build": "b1", "outcome": "running", "hosts": hosts}
    )
    assert failed_in_ledger(running, gen) == (
        "web1 failed (recorded by the replica that held the set)"
    )
    assert failed_in_ledger(running, "2" * 40) is None
    halted = SetProgress.from_json({"generation": gen, "outcome": "failed"})
    assert failed_in_ledger(halted, gen) is not None


def test_replica_settings_are_checked(tmp_path: Path) -> None:
    from reconciler.errors import SettingsError
    from reconciler.settings import load_settings

    path = tmp_path / "reconciler.toml"
    path.write_text('replica_id = "rec-a"\nlease_seconds = 30\n')
    settings = load_settings(path)
    assert (settings.replica_id, settings.lease_seconds) == ("rec-a", 30)
    for bad, why in (
        ('replica_id = "a/b"', "replica_id 'a/b'"),
        ('replica_id = "x.lock"', "replica_id 'x.lock'"),
        ("lease_seconds = 1", "lease_seconds must be at least 2"),
        ('lease_seconds = "60"', "must be int or float"),
    ):
        path.write_text(bad + "\n")
        with pytest.raises(SettingsError, match=re.escape(why)):
            load_settings(path)
