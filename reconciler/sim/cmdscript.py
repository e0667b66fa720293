"""The tiny script each simulated FreeBSD command is, at its FreeBSD path inside a host.

Kept apart from prepare.py so a simulated command can write one too (the
ports-mgmt/pkg package carries /usr/local/sbin/pkg) without importing what
laying out a fleet needs.
"""

from __future__ import annotations

import sys
from pathlib import Path


def command_script(name: str) -> str:
    """The script that runs the simulated command ``name`` (a key of commands._MODULES)."""
    # -S: skip site (and the editable-install finder): these run on every SSH
    # command, so start-up time matters; the package directory is put on sys.path.
    package_root = Path(__file__).resolve().parents[2]
    return (
        f"#!{sys.executable} -SE\n"
        f"import sys\nsys.path.insert(0, {str(package_root)!r})\n"
        f"# FreeBSD {name}, simulated: reconciler/sim/commands/, docs/freebsd-commands.md\n"
        "from reconciler.sim.commands import main\n"
        f"sys.exit(main({name!r}, sys.argv[1:]))\n"
    )
