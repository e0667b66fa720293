"""reconciler: GitOps for FreeBSD build sets."""

__version__ = "0.1.0"
