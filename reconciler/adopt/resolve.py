"""The source a fleet runs, in full: ``uname -v``'s 12 hex -> URL, branch, 40-hex revision.

``sys/conf/newvers.sh`` writes ``git rev-parse --short`` (12 hex on a tree as
big as FreeBSD's) into the version string; fleet.yaml wants the full commit.
Asked read-only on the src host, in this order:

1. its /usr/src, when a git checkout: ``git rev-parse --verify HASH^{commit}``;
2. the upstream: ``git ls-remote URL``, which finds it only as a branch tip;
3. otherwise the user names it (``--revision``); nothing is fetched for them.

The branch comes from ``--branch``, else ``uname -v`` (newvers.sh puts it in front
of ``n<count>`` unless HEAD was detached), else the src host's refs that
contain the commit (the one whose tip is fewest commits ahead), else the
ls-remote ref. The URL: ``--source-url``, else /usr/src's origin, else
FreeBSD's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler import remote
from reconciler.adopt.reading import HostReading
from reconciler.transport.ssh import Connection

FREEBSD_URL = "https://git.freebsd.org/src.git"
_FULL = re.compile(r"[0-9a-f]{40}")
_TIMEOUT = 120.0


@dataclass(frozen=True)
class Resolved:
    url: str
    url_why: str
    branch: str
    branch_why: str
    revision: str
    revision_why: str


@dataclass(frozen=True)
class Wanted:
    """The command line's say: each None leaves it to the hosts."""

    revision: str | None = None
    branch: str | None = None
    url: str | None = None


def _git(conn: Connection, *args: str) -> str | None:
    result = conn.run(["git", "-C", remote.SRC, *args], timeout=_TIMEOUT)
    return result.stdout if result.ok else None


def _branch_name(ref: str) -> str | None:
    for prefix in ("refs/remotes/origin/", "refs/heads/"):
        if ref.startswith(prefix) and ref[len(prefix) :] != "HEAD":
            return ref[len(prefix) :]
    return None


def _containing_branch(conn: Connection, revision: str) -> str | None:
    out = _git(
        conn,
        "for-each-ref",
        "--contains",
        revision,
        "--format=%(refname)",
        "refs/remotes/origin/",
        "refs/heads/",
    )
    names = list(dict.fromkeys(n for n in map(_branch_name, (out or "").split()) if n))
    if len(names) <= 1:
        return names[0] if names else None

    def ahead(name: str) -> int:
        counted = _git(conn, "rev-list", "--count", f"{revision}..refs/remotes/origin/{name}")
        counted = counted or _git(conn, "rev-list", "--count", f"{revision}..refs/heads/{name}")
        return int(counted.strip()) if counted and counted.strip().isdigit() else 1 << 30

    return min(names, key=lambda n: (ahead(n), n))


def _ls_remote(conn: Connection, url: str, hash12: str) -> tuple[str, str | None] | None:
    result = conn.run(["git", "ls-remote", "--", url], timeout=_TIMEOUT)
    if not result.ok:
        return None
    found = [
        line.split("\t", 1)
        for line in result.stdout.splitlines()
        if line.startswith(hash12) and "\t" in line
    ]
    oids = {oid for oid, _ in found}
    if len(oids) != 1:
        return None
    oid = oids.pop()
    branches = [b for b in (_branch_name(ref) for _, ref in found) if b]
    return oid, branches[0] if branches else None


def resolve(
    conn: Connection,
    src: HostReading,
    hash12: str | None,
    uname_branch: str | None,
    wanted: Wanted,
) -> tuple[Resolved | None, list[str]]:
    """URL, branch and full revision, asked of the src host; or the problems."""
    name = src.name
    checkout = src.source.present
    if wanted.url:
        url, url_why = wanted.url, "chosen with --source-url"
    elif checkout and src.origin:
        url, url_why = src.origin, f"origin of {name}:/usr/src"
    else:
        url, url_why = FREEBSD_URL, f"FreeBSD's ({name} has no git checkout in /usr/src to ask)"
    tip_branch: str | None = None
    if wanted.revision:
        revision, revision_why = wanted.revision, "chosen with --revision"
    else:
        assert hash12 is not None  # the draft made sure one of the two is there
        full = (
            _git(conn, "rev-parse", "--verify", "--quiet", f"{hash12}^{{commit}}")
            if checkout
            else None
        )
        full = full.strip() if full else None
        revision_why = f"{hash12} (uname -v) resolved in {name}:/usr/src"
        if not (full and _FULL.fullmatch(full) and full.startswith(hash12)):
            tip = _ls_remote(conn, url, hash12)
            full, tip_branch = tip if tip else (None, None)
            revision_why = f"{hash12} (uname -v) is a branch tip of {url} (git ls-remote on {name})"
        if full is None:
            where = f"not in {name}:/usr/src, " if checkout else ""
            return None, [
                f"cannot resolve {hash12} (uname -v) to a full revision: {where}not a branch "
                f"tip of {url}; give it with --revision FULL (find it with git rev-parse "
                f"{hash12} in a clone that has it)"
            ]
        revision = full
    if wanted.branch:
        branch, branch_why = wanted.branch, "chosen with --branch"
    elif uname_branch:
        branch, branch_why = uname_branch, "named by uname -v"
    else:
        found = _containing_branch(conn, revision) if checkout else None
        branch_why = f"the branch of {name}:/usr/src that contains the revision"
        if found is None and tip_branch:
            found, branch_why = tip_branch, f"the ref of {url} whose tip it is"
        if found is None:
            return None, [
                f"cannot tell which branch {revision[:12]} is on (uname -v names none: the "
                f"kernel was built from a detached HEAD; {name}:/usr/src knows none): "
                "give it with --branch, e.g. --branch stable/14"
            ]
        branch = found
    return Resolved(url, url_why, branch, branch_why, revision, revision_why), []
