"""Simulated kernels and worlds: what a build records and what uname reports.

A "kernel" is a small text file (``/boot/kernel/kernel`` in a BE, or
``<objdir>/sys/<K>/kernel`` after buildkernel) of ``key=value`` lines::

    ident, version (e.g. 14.2-STABLE), revision (40 hex, the simulator's own
    record), vcs (newvers.sh's word: ``stable/14-n3-804490495465``, ``n3-...``
    for a detached HEAD, no ``n3-`` from a shallow clone, a shorter hash with a
    smaller core.abbrev, ``-dirty``, or empty when the build host has no git),
    modified (yes/no), serial (the ``#N``), reproducible (yes when built
    WITH_REPRODUCIBLE_BUILD), osreldate (__FreeBSD_version), built (date as
    newvers.sh prints it), builder (root@host), objdir

A world (``/usr/share/freebsd-sim/world`` in a BE, toolchain-metadata.mk's
sibling ``world`` in an objdir) has version, revision, osreldate, vcs.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

WORLD_FILE = "usr/share/freebsd-sim/world"
KERNEL_FILE = "boot/kernel/kernel"
DATE_FORMAT = "%a %b %d %H:%M:%S UTC %Y"


def parse(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip()
    return result


def render(info: dict[str, str], title: str) -> str:
    return f"# {title} (simulated)\n" + "".join(f"{k}={v}\n" for k, v in sorted(info.items()))


def read(path: Path) -> dict[str, str] | None:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None


def _head(src: Path) -> str:
    """The tree's HEAD commit, read from .git without git (the simulator's own bookkeeping)."""
    git = src / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    if not head.startswith("ref: "):
        return head
    ref = head[5:]
    try:
        return (git / ref).read_text(encoding="utf-8").strip()
    except OSError:
        pass
    try:
        for line in (git / "packed-refs").read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return ""


def _vcs(src: Path, abbrev: int | None) -> tuple[str, bool]:
    """The VCS word sys/conf/newvers.sh puts into the version string ("" for none), and
    whether git saw local changes.

    As newvers.sh does it: ``.git`` found at the tree's top, git looked for only
    at /usr/bin/git and /usr/local/bin/git (FreeBSD's base has none), the hash
    from ``git rev-parse --verify --short HEAD`` (git's default abbreviation,
    which core.abbrev in the host's git configuration changes; ``abbrev`` forces
    one, for kernels the simulator makes outside any host), ``n<count>-`` only
    when the clone is not shallow, ``<branch>-`` unless HEAD is detached,
    ``-dirty`` when ``git diff`` sees a change.
    """
    import os
    import subprocess  # late: most commands never build, and start-up time counts

    if not (src / ".git").exists():
        return "", False
    git_bin = next((g for g in ("/usr/bin/git", "/usr/local/bin/git") if os.access(g, os.X_OK)), "")
    if not git_bin:
        return "", False
    # The host's own environment and configuration (HOME, /etc/gitconfig), as
    # newvers.sh run by make would see them; only inherited GIT_* are dropped.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["LC_ALL"] = "C"
    base = [git_bin, "-c", "help.autocorrect=0", f"--git-dir={src / '.git'}"]

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True, check=False)

    short = f"--short={abbrev}" if abbrev else "--short"
    word = git("rev-parse", "--verify", short, "HEAD").stdout.strip()
    if not word:
        return "", False
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "false":
        count = git("rev-list", "--first-parent", "--count", "HEAD").stdout.strip()
        if count:
            word = f"n{count}-{word}"
    branch = git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    if branch and branch != "HEAD":
        word = f"{branch}-{word}"
    diff = git(
        f"--work-tree={src}",
        "-c",
        "core.checkStat=minimal",
        "-c",
        "core.fileMode=off",
        "diff",
        "--quiet",
    )
    modified = diff.returncode != 0
    if modified:
        word += "-dirty"
    return word, modified


def source_info(src: Path, *, abbrev: int | None = None) -> dict[str, str]:
    """version, revision, vcs, modified, osreldate of the tree at ``src`` (a git work tree)."""
    newvers = (src / "sys/conf/newvers.sh").read_text(encoding="utf-8")
    revision_m = re.search(r'^REVISION="([^"]+)"', newvers, re.M)
    branch_m = re.search(r"^BRANCH=\$\{BRANCH_OVERRIDE:-([^}]+)\}", newvers, re.M)
    param = (src / "sys/sys/param.h").read_text(encoding="utf-8")
    osrel_m = re.search(r"#define __FreeBSD_version (\d+)", param)
    revision = revision_m.group(1) if revision_m else "14.0"
    version = f"{revision}-{branch_m.group(1) if branch_m else 'STABLE'}"
    vcs, modified = _vcs(src, abbrev)
    return {
        "version": version,
        "revision": _head(src),
        "vcs": vcs,
        "modified": "yes" if modified else "no",
        "osreldate": osrel_m.group(1) if osrel_m else "1400000",
    }


def now() -> str:
    return time.strftime(DATE_FORMAT, time.gmtime())


def kern_version(kernel: dict[str, str]) -> str:
    """``sysctl -n kern.version``: vers.c's VERSTR as newvers.sh writes it.

    ``FreeBSD <release> #<n>[ <vcs>]: <date>`` and ``    <user>@<host>:<objdir>``
    on a second line; built with ``newvers.sh -R`` (WITH_REPRODUCIBLE_BUILD)
    from an unmodified tree, one line ``FreeBSD <release>[ <vcs>] <ident>``.
    """
    vcs = kernel.get("vcs", "")
    word = f" {vcs}" if vcs else ""
    if kernel.get("reproducible") == "yes" and kernel.get("modified") != "yes":
        return f"FreeBSD {kernel.get('version', '')}{word} {kernel.get('ident', '')}\n"
    return (
        f"FreeBSD {kernel.get('version', '')} #{kernel.get('serial', '0')}{word}: "
        f"{kernel.get('built', '')}\n"
        f"    {kernel.get('builder', 'root@localhost')}:{kernel.get('objdir', '')}\n"
    )
