"""reconciler: GitOps for FreeBSD build sets.

``reconciler.__version__`` is the installed distribution's version, read from
its metadata: pyproject.toml is the one place it is written. It is looked up
on first use, not at import, because importlib.metadata costs some 40 ms and
every simulated FreeBSD command imports this package.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("reconciler")
        except PackageNotFoundError:  # a source tree put on sys.path by hand, never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
