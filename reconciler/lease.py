"""Leases on build sets, held on the config repo's own git server.

Several ``reconciler run`` replicas share a config repo's build sets: each
set is rolled out by the one replica that holds its lease, a ref
``refs/reconciler/leases/<set>`` on the config repo. Each replica also keeps
a presence lease ``refs/reconciler/replicas/<replica id>``, so the others know
who is alive. No server of our own: git's atomic ref update is the only arbiter.

- A lease is a root commit with an empty tree whose message names the set,
  the holder (replica id and a per-process instance token), when it was taken
  and when it expires (Unix seconds, the holder's clock).
- It is taken, renewed and released only by compare-and-swap: ``git push
  --force-with-lease=<ref>:<the sha we read>`` to the remote (``<ref>:`` with
  nothing after the colon: the ref must not exist yet), or, on a repository
  without a remote, ``git update-ref <ref> <new> <old>``. Of two replicas
  that race for a lease, the server's ref transaction lets exactly one win;
  the loser's push is rejected and it reads the winner's lease next round.
- Clocks: a replica's clock may differ from another's by at most
  :func:`skew_margin` (``lease_seconds / 10``). The holder counts its lease
  valid only until ``expires - margin``; the others count it expired only
  after ``expires + margin``. So while the clocks agree within the margin,
  the holder has stopped starting steps before anyone else may take the set.
- Renewal every :func:`renew_interval` (``lease_seconds / 5``); a replica
  whose renewal fails stops starting steps on the set at once (the daemon's
  ``may_continue``) and tries again next round.

Which replica takes a free set (:func:`choose`): the live replica ranked
first for it by rendezvous hashing (sha256 of set and replica id), so sets
spread over replicas without talking; a replica takes nothing until its own
presence has been up one renewal interval (replicas started together see each
other first), and any replica takes a set that stayed free for a whole lease
(the preferred one may not know the set yet). Held sets stay where they are:
a replica that joins later takes only free sets.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import RepoError
from reconciler.gitutil import identity_env, new_commit, run_git

log = logging.getLogger(__name__)

LEASES = "refs/reconciler/leases/"
REPLICAS = "refs/reconciler/replicas/"
#: Where a replica keeps what it fetched of the remote's lease refs (its own clone).
SEEN = "refs/reconciler/seen/"
_NETWORK_TIMEOUT = 60.0
_BATCH_SSH = "ssh -o BatchMode=yes"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def skew_margin(lease_seconds: float) -> float:
    """How far apart the replicas' clocks may be: a tenth of the lease."""
    return lease_seconds / 10


def renew_interval(lease_seconds: float) -> float:
    """How often a replica renews what it holds (five times a lease)."""
    return lease_seconds / 5


def check_name(name: str, what: str = "lease") -> str:
    if not _NAME.match(name) or name.endswith((".", ".lock")):
        raise RepoError(f"invalid {what} name {name!r}: letters, digits, '.', '_', '-'")
    return name


@dataclass(frozen=True)
class Lease:
    """One lease as read from its ref (or as just written)."""

    name: str  # the build set, or the replica id of a presence lease
    holder: str  # replica id
    instance: str  # token of the holder's process: two processes never share a lease
    acquired: float  # when this holder took it (Unix seconds, its clock)
    expires: float  # until when (Unix seconds, its clock)
    commit: str  # the lease commit: the expected old value of the next swap

    def expired(self, now: float, margin: float) -> bool:
        """Free to take, as another replica sees it: past expiry by more than the skew."""
        return now > self.expires + margin

    def valid_for(self, holder: str, instance: str, now: float, margin: float) -> bool:
        """Whether ``holder`` may still start a step under this lease, by its own clock."""
        return self.holder == holder and self.instance == instance and now < self.expires - margin

    def message(self) -> str:
        until = datetime.fromtimestamp(self.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"lease {self.name}: held by {self.holder} until {until}\n\n"
            f"Reconciler-Lease: {self.name}\nReconciler-Lease-Holder: {self.holder}\n"
            f"Reconciler-Lease-Instance: {self.instance}\n"
            f"Reconciler-Lease-Acquired: {self.acquired:.3f}\n"
            f"Reconciler-Lease-Expires: {self.expires:.3f}\n"
        )


def parse_lease(commit: str, message: str) -> Lease | None:
    """A lease from its commit message; None when the commit is not one of ours."""
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("Reconciler-Lease"):
            fields[key.strip()] = value.strip()
    try:
        return Lease(
            name=fields["Reconciler-Lease"],
            holder=fields["Reconciler-Lease-Holder"],
            instance=fields.get("Reconciler-Lease-Instance", ""),
            acquired=float(fields["Reconciler-Lease-Acquired"]),
            expires=float(fields["Reconciler-Lease-Expires"]),
            commit=commit,
        )
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Swap:
    """A compare-and-swap of ``ref``: from ``old`` (None: absent) to ``new`` (None: deleted)."""

    ref: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Leases:
    """Every lease of the repository, as read in one go."""

    sets: Mapping[str, Lease]
    replicas: Mapping[str, Lease]


class LeaseStore:
    """The lease refs of one repository, pushed to ``remote`` when one is named."""

    def __init__(
        self, repo: Path, remote: str | None = None, *, timeout: float = _NETWORK_TIMEOUT
    ) -> None:
        self.repo = Path(repo)
        self.remote = remote
        self.timeout = timeout
        # Never a prompt: a daemon has no terminal, and `status` must not hang on one.
        self._env = {} if "GIT_SSH_COMMAND" in os.environ else {"GIT_SSH_COMMAND": _BATCH_SSH}

    def _git(self, *args: str) -> tuple[int, str, str]:
        out = run_git(self.repo, args, timeout=self.timeout, env=self._env)
        return out.returncode, out.text, out.stderr

    def read(self) -> Leases:
        """Every lease; from the remote when there is one (raises RepoError when unreachable)."""
        where = ""
        if self.remote is not None:
            code, _, err = self._git(
                "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", self.remote,
                f"+{LEASES}*:{SEEN}leases/*", f"+{REPLICAS}*:{SEEN}replicas/*",
            )  # fmt: skip
            if code != 0:
                lines = [line for line in err.splitlines() if line.strip()]
                raise RepoError(f"cannot read leases from {self.remote}: {(lines or ['?'])[-1]}")
            where = SEEN
        sets_ns = f"{where}leases/" if where else LEASES
        replicas_ns = f"{where}replicas/" if where else REPLICAS
        code, out, err = self._git(
            "for-each-ref", "--format=%(refname)%00%(objectname)%00%(contents)%00",
            sets_ns, replicas_ns,
        )  # fmt: skip
        if code != 0:
            raise RepoError(f"cannot list leases in {self.repo}: {err.strip()}")
        sets: dict[str, Lease] = {}
        replicas: dict[str, Lease] = {}
        fields = out.split("\0")
        for i in range(0, len(fields) - 2, 3):
            ref, commit, message = fields[i].strip(), fields[i + 1], fields[i + 2]
            lease = parse_lease(commit, message)
            if lease is None:
                continue
            if ref.startswith(sets_ns):
                sets[ref[len(sets_ns) :]] = lease
            elif ref.startswith(replicas_ns):
                replicas[ref[len(replicas_ns) :]] = lease
        return Leases(sets, replicas)

    def write(self, lease: Lease) -> str:
        """The lease's commit object (no ref moves): a root commit, empty tree."""
        env = identity_env(datetime.fromtimestamp(lease.acquired, UTC))
        return new_commit(self.repo, None, {}, lease.message(), env)

    def swap(self, swaps: Sequence[Swap]) -> dict[str, str]:
        """Carry out each swap on its own (one push); ref -> "" when it landed, else why not."""
        if not swaps:
            return {}
        if self.remote is None:
            return {s.ref: self._swap_local(s) for s in swaps}
        args = ["push", "--porcelain", "--no-verify", self.remote]
        for s in swaps:
            args.append(f"--force-with-lease={s.ref}:{s.old or ''}")
        args += [f"{s.new or ''}:{s.ref}" for s in swaps]
        code, out, err = self._git(*args)
        found: dict[str, str] = {}
        for line in out.splitlines():
            flag, _, rest = line.partition("\t")
            refs, _, summary = rest.partition("\t")
            dst = refs.rpartition(":")[2]
            if dst in {s.ref for s in swaps}:
                found[dst] = "" if flag in (" ", "+", "*", "-", "=") else summary.strip()
        why = [line for line in err.splitlines() if line.strip()] or [f"exit status {code}"]
        return {s.ref: found.get(s.ref, why[-1]) for s in swaps}

    def _swap_local(self, s: Swap) -> str:
        if s.new is None:
            code, _, err = self._git("update-ref", "-d", s.ref, s.old or "")
        else:
            code, _, err = self._git("update-ref", "-m", "lease", s.ref, s.new, s.old or "")
        return "" if code == 0 else (err.strip().splitlines() or ["update-ref failed"])[-1]


def rank(name: str, replica: str) -> str:
    """Rendezvous hashing: the replica with the highest rank for a set is its first choice."""
    return hashlib.sha256(f"{name}\0{replica}".encode()).hexdigest()


@dataclass(frozen=True)
class Choice:
    """What a replica does with the leases this round."""

    renew: tuple[str, ...]  # sets it holds and keeps
    take: tuple[str, ...]  # free sets it takes
    release: tuple[str, ...]  # sets it holds that left the config


def choose(
    *,
    me: str,
    instance: str,
    now: float,
    lease_seconds: float,
    sets: Iterable[str],
    leases: Leases,
    present_since: float | None,
    free_since: Mapping[str, float],
) -> Choice:
    """Pure: which leases ``me`` renews, takes and releases now.

    ``present_since``: when this replica's presence lease was first in place
    (None: not yet). ``free_since``: set -> since when this replica has seen
    it free without a break.
    """
    margin = skew_margin(lease_seconds)
    wanted = list(dict.fromkeys(sets))
    live = sorted(
        {name for name, p in leases.replicas.items() if not p.expired(now, margin)} | {me}
    )
    renew, take = [], []
    for name in wanted:
        lease = leases.sets.get(name)
        if lease is not None and lease.holder == me and lease.instance == instance:
            renew.append(name)  # ours, even if late: the swap against our sha decides
            continue
        if lease is not None and not lease.expired(now, margin):
            continue
        if present_since is None or now - present_since < renew_interval(lease_seconds):
            continue  # not seen by the others yet
        first = max(live, key=lambda replica: rank(name, replica))
        if first == me or now - free_since.get(name, now) >= lease_seconds:
            take.append(name)
    release = [
        name
        for name, lease in leases.sets.items()
        if name not in wanted and lease.holder == me and lease.instance == instance
    ]
    return Choice(tuple(renew), tuple(take), tuple(sorted(release)))


def visible_leases(repo: Path, *, contact_origin: bool = True) -> Mapping[str, Lease]:
    """Set -> lease, as ``reconciler status`` shows them; empty when there are none to see.

    The repository's own lease refs when it has some (it is the config repo's
    server); else, with ``contact_origin``, those of its ``origin`` remote (a
    checkout of it), fetched into ``refs/reconciler/seen/``. Never raises:
    a status display does without leases it cannot read.
    """
    try:
        own = LeaseStore(repo).read()
        if own.sets or not contact_origin:
            return own.sets
        origin = run_git(repo, ("config", "--get", "remote.origin.url"))
        if origin.returncode != 0:
            return {}
        return LeaseStore(repo, remote="origin", timeout=15.0).read().sets
    except RepoError as exc:
        log.info("leases not shown: %s", exc)
        return {}
