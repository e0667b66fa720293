"""The simulated git.freebsd.org: a small FreeBSD-like ``stable/14`` branch.

Every commit is made with a fixed author, committer and date, so the hashes
are the same on every machine and ``example-repo/fleet.yaml`` can pin one.
:data:`COMMITS` lists the branch's commits oldest first (hashes as made by
:func:`create`); hosts start on the oldest, the example repo pins the third
(``COMMITS[2]``) and the demo bumps to the newest. New commits are only ever
appended: existing hashes never change.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SimError
from reconciler.gitutil import HERMETIC, git

BRANCH = "stable/14"
URL = "https://git.freebsd.org/src.git"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "FreeBSD Simulator",
    "GIT_AUTHOR_EMAIL": "sim@freebsd.invalid",
    "GIT_COMMITTER_NAME": "FreeBSD Simulator",
    "GIT_COMMITTER_EMAIL": "sim@freebsd.invalid",
}


@dataclass(frozen=True)
class Step:
    """One upstream commit: its subject, date, version and the files it changes."""

    subject: str
    date: str  # git date, UTC
    revision: str  # newvers.sh REVISION
    osreldate: int  # sys/sys/param.h __FreeBSD_version
    files: tuple[tuple[str, str], ...] = ()


def _newvers(revision: str) -> str:
    return (
        "#!/bin/sh\n# Simulated sys/conf/newvers.sh: only the variables that matter.\n"
        'TYPE="FreeBSD"\n'
        f'REVISION="{revision}"\n'
        "BRANCH=${BRANCH_OVERRIDE:-STABLE}\n"
        'RELEASE="${REVISION}-${BRANCH}"\n'
        'VERSION="${TYPE} ${RELEASE}"\n'
    )


def _param(osreldate: int) -> str:
    return (
        "/* Simulated sys/sys/param.h */\n"
        "#undef __FreeBSD_version\n"
        f"#define __FreeBSD_version {osreldate}\t/* Master, propagated to newvers */\n"
    )


_GENERIC = """#
# GENERIC -- Generic kernel configuration file for FreeBSD/amd64 (simulated)
#
cpu\t\tHAMMER
ident\t\tGENERIC

makeoptions\tDEBUG=-g
options \tSCHED_ULE
options \tINET
options \tINET6
options \tZFS
options \tNFSCL
options \tNFSD
device\t\tvirtio
"""

_BASE_FILES: tuple[tuple[str, str], ...] = (
    (
        "Makefile",
        "# Simulated top-level Makefile of the FreeBSD source tree.\n"
        "# Targets: buildworld buildkernel installkernel installworld delete-old\n",
    ),
    ("Makefile.inc1", "# Simulated Makefile.inc1\n"),
    ("UPDATING", "Updating Information for FreeBSD stable/14 users (simulated).\n"),
    ("sys/amd64/conf/GENERIC", _GENERIC),
    (
        "sys/amd64/conf/GENERIC-NODEBUG",
        "include GENERIC\n\nident   GENERIC-NODEBUG\n\nnooptions INVARIANTS\n",
    ),
    (
        "sys/amd64/conf/MINIMAL",
        "cpu\t\tHAMMER\nident\t\tMINIMAL\n\noptions \tSCHED_ULE\noptions \tINET\n",
    ),
    ("sys/amd64/conf/MINIMAL-NODEBUG", "include MINIMAL\nident   MINIMAL-NODEBUG\n"),
    (
        "etc/master.passwd",
        "root::0:0::0:0:Charlie &:/root:/bin/sh\n"
        "toor:*:0:0::0:0:Bourne-again Superuser:/root:\n"
        "daemon:*:1:1::0:0:Owner of many system processes:/root:/usr/sbin/nologin\n",
    ),
    ("etc/login.conf", "default:\\\n\t:passwd_format=sha512:\\\n\t:umask=022:\n"),
    (
        "etc/defaults/rc.conf",
        '# Simulated /etc/defaults/rc.conf\nsshd_enable="NO"\nnfs_client_enable="NO"\n'
        'nfs_server_enable="NO"\nmountd_enable="NO"\nrpcbind_enable="NO"\n',
    ),
    ("etc/motd.template", "FreeBSD 14.1-STABLE (simulated)\n"),
)

STEPS: tuple[Step, ...] = (
    Step(
        "Import the simulated stable/14 tree", "2024-06-04T12:00:00Z", "14.1", 1401500, _BASE_FILES
    ),
    Step(
        "amd64: GENERIC: enable NFS server options",
        "2024-08-12T09:30:00Z",
        "14.1",
        1401501,
        (("sys/amd64/conf/GENERIC", _GENERIC + "options \tNFS_ROOT\n"),),
    ),
    Step(
        "Update to 14.2-STABLE",
        "2024-12-03T16:00:00Z",
        "14.2",
        1402500,
        (("etc/motd.template", "FreeBSD 14.2-STABLE (simulated)\n"),),
    ),
    Step(
        "rc: add pf defaults; add the _sim user",
        "2025-02-20T10:15:00Z",
        "14.2",
        1402501,
        (
            (
                "etc/defaults/rc.conf",
                '# Simulated /etc/defaults/rc.conf\nsshd_enable="NO"\nnfs_client_enable="NO"\n'
                'nfs_server_enable="NO"\nmountd_enable="NO"\nrpcbind_enable="NO"\npf_enable="NO"\n',
            ),
            (
                "etc/master.passwd",
                "root::0:0::0:0:Charlie &:/root:/bin/sh\n"
                "toor:*:0:0::0:0:Bourne-again Superuser:/root:\n"
                "daemon:*:1:1::0:0:Owner of many system processes:/root:/usr/sbin/nologin\n"
                "_sim:*:900:900::0:0:Simulated service user:/nonexistent:/usr/sbin/nologin\n",
            ),
        ),
    ),
    # A new daemon user, as FreeBSD adds them (e.g. unbound, _ypldap): installworld
    # checks that the running system has it (Makefile.inc1 CHECK_UIDS) unless
    # DB_FROM_SRC. Only master.passwd changes: the oldest tree has no etc/group,
    # so adding one would conflict with every host's /etc/group in etcupdate.
    Step(
        "Add the _simd user for the simulated daemon",
        "2025-04-08T08:45:00Z",
        "14.2",
        1402502,
        (
            (
                "etc/master.passwd",
                "root::0:0::0:0:Charlie &:/root:/bin/sh\n"
                "toor:*:0:0::0:0:Bourne-again Superuser:/root:\n"
                "daemon:*:1:1::0:0:Owner of many system processes:/root:/usr/sbin/nologin\n"
                "_sim:*:900:900::0:0:Simulated service user:/nonexistent:/usr/sbin/nologin\n"
                "_simd:*:901:1::0:0:Simulated daemon:/var/empty:/usr/sbin/nologin\n",
            ),
        ),
    ),
)

#: The branch's commit hashes, oldest first. Fixed identities and dates make
#: them the same on every machine (a test checks this against :func:`create`).
COMMITS: tuple[str, ...] = (
    "3da36f19fa4f952582c222acd027f7539940b076",
    "f24099605963417126f7567a2e320fe87257d91d",
    "8044904954654c62d8dcd995b7ab7df3a3ed8903",
    "357188fed10d6ef5e4423bb714643c6daca55ec2",
    "d2bd05bed3342ee976ecf683b675b20dd68b86dc",
)


def git_env() -> dict[str, str]:
    """What the upstream's git commands add to the scrubbed environment (reconciler.gitutil)."""
    return dict(HERMETIC)


def _git(*args: str, env: dict[str, str] | None = None) -> str:
    # Through the project's one git runner (inherited GIT_* scrubbed); paths are absolute.
    return git(Path("/"), *args, env={**HERMETIC, **(env or {})}, error=SimError).strip()


def create(bare: Path) -> list[str]:
    """Make the upstream repository at ``bare``; return its commits, oldest first."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "-q", "--bare", "-b", BRANCH, str(bare))
    hashes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sim-upstream-") as tmp:
        work = Path(tmp)
        for step in STEPS:
            files = [
                *step.files,
                ("sys/conf/newvers.sh", _newvers(step.revision)),
                ("sys/sys/param.h", _param(step.osreldate)),
            ]
            for rel, text in files:
                path = work / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            env = (
                git_env()
                | _IDENTITY
                | {"GIT_AUTHOR_DATE": step.date, "GIT_COMMITTER_DATE": step.date}
            )
            base = ["--git-dir", str(bare), "--work-tree", str(work)]
            _git(*base, "add", "-A", env=env)
            _git(*base, "commit", "-q", "-m", step.subject, env=env)
            hashes.append(_git("--git-dir", str(bare), "rev-parse", "HEAD"))
    return hashes


def commits() -> list[str]:
    """The branch's commits, oldest first, made afresh in a scratch repository."""
    with tempfile.TemporaryDirectory(prefix="sim-upstream-") as tmp:
        return create(Path(tmp) / "src.git")
