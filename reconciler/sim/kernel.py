"""Simulated kernels and worlds: what a build records and what uname reports.

A "kernel" is a small text file (``/boot/kernel/kernel`` in a BE, or
``<objdir>/sys/<K>/kernel`` after buildkernel) of ``key=value`` lines::

    ident, version (e.g. 14.2-STABLE), revision (40 hex), vcs
    (``stable/14-n3-8044904954654`` or ``n3-...`` for a detached HEAD, as
    sys/conf/newvers.sh makes it), osreldate (__FreeBSD_version), built
    (date as newvers.sh prints it), builder (root@host), objdir

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


def source_info(src: Path) -> dict[str, str]:
    """version, revision, vcs, osreldate of the tree at ``src`` (a git work tree)."""
    newvers = (src / "sys/conf/newvers.sh").read_text(encoding="utf-8")
    revision_m = re.search(r'^REVISION="([^"]+)"', newvers, re.M)
    branch_m = re.search(r"^BRANCH=\$\{BRANCH_OVERRIDE:-([^}]+)\}", newvers, re.M)
    param = (src / "sys/sys/param.h").read_text(encoding="utf-8")
    osrel_m = re.search(r"#define __FreeBSD_version (\d+)", param)
    revision = revision_m.group(1) if revision_m else "14.0"
    version = f"{revision}-{branch_m.group(1) if branch_m else 'STABLE'}"

    import subprocess  # late: most commands never build, and start-up time counts

    from reconciler.sim.upstream import git_env

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "safe.directory=*", "-C", str(src), *args],
            env=git_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    head = git("rev-parse", "HEAD")
    count = git("rev-list", "--first-parent", "--count", "HEAD") or "0"
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    # newvers.sh: the branch name prefixes the count unless HEAD is detached.
    vcs = f"n{count}-{head[:12]}" if branch in ("", "HEAD") else f"{branch}-n{count}-{head[:12]}"
    return {
        "version": version,
        "revision": head,
        "vcs": vcs,
        "osreldate": osrel_m.group(1) if osrel_m else "1400000",
    }


def now() -> str:
    return time.strftime(DATE_FORMAT, time.gmtime())


def kern_version(kernel: dict[str, str]) -> str:
    """``sysctl -n kern.version``: two lines, as the kernel's vers.c has it."""
    return (
        f"FreeBSD {kernel.get('version', '')} #0 {kernel.get('vcs', '')}: "
        f"{kernel.get('built', '')}\n"
        f"    {kernel.get('builder', 'root@localhost')}:{kernel.get('objdir', '')}\n"
    )
