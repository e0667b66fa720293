"""The packages of docs/packages.md on a copy of example-repo (example-repo itself lists none).

example-repo pins the ports tree but lists no packages, so the suite's many
rollouts of it build and install none; the tests of the packages half add
them with :func:`add_packages`: lab's origins (with a flavor and an extra for
builder), its ports/make.conf and nginx's options, and db's one package.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "packages"

LAB = """packages:                   # built once on builder, installed into each new BE
  origins:
    - www/nginx
    - security/sudo
    - devel/py-six@py311
  hosts:
    builder: [sysutils/tmux]      # extras for one host: built into the same repository
"""

DB = """packages:
  origins:
    - databases/postgresql16-server
"""


def add_packages(repo: Path, *, lab: bool = True, db: bool = True) -> Path:
    """Append the ``packages:`` blocks (and lab's ports/ directory) to the build sets."""
    if lab:
        with (repo / "buildsets/lab/buildset.yaml").open("a", encoding="utf-8") as handle:
            handle.write(LAB)
        shutil.copytree(FIXTURES / "lab" / "ports", repo / "buildsets/lab/ports")
    if db:
        with (repo / "buildsets/db/buildset.yaml").open("a", encoding="utf-8") as handle:
            handle.write(DB)
    return repo


_PACKAGED: list[Path] = []


def packaged_example() -> Path:
    """One copy of example-repo with the packages added, made once per test process."""
    if not _PACKAGED:
        import tempfile

        from tests.config.conftest import EXAMPLE

        target = Path(tempfile.mkdtemp(prefix="packaged-example-")) / "repo"
        shutil.copytree(EXAMPLE, target)
        _PACKAGED.append(add_packages(target))
    return _PACKAGED[0]
