"""The packages of docs/packages.md on a copy of example-repo (example-repo itself lists none).

:func:`add_packages` is the simulator's (reconciler.sim.example, which the
demo uses too); :func:`packaged_example` is one such copy per test process,
for tests that only read a config.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from reconciler.sim.example import add_packages as add_packages
from reconciler.sim.example import example_repo_path

_PACKAGED: list[Path] = []


def packaged_example() -> Path:
    """One copy of example-repo with the packages added, made once per test process."""
    if not _PACKAGED:
        target = Path(tempfile.mkdtemp(prefix="packaged-example-")) / "repo"
        shutil.copytree(example_repo_path(), target)
        _PACKAGED.append(add_packages(target))
    return _PACKAGED[0]
