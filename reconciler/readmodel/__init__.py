"""The daemon's one read model: the ledger tip + the daemon's own state, as frozen values.

The status page, ``/api/status``, the Prometheus metrics (and, later,
``reconciler status``) all read a :class:`StatusView`; none of them reads a
host, parses progress text or runs git beyond the local ledger reads here.

Modules: ``views`` (the frozen values and their JSON), ``build`` (the pure
function from ledger files, commits, config and daemon state to a view),
``live`` (what the daemon knows that the ledger does not: running job, last
report, last progress event), ``loader`` (reads the local ledger, caches by tip).
"""

from __future__ import annotations

from reconciler.readmodel.build import LedgerSnapshot, build_view, desired_of
from reconciler.readmodel.live import Live, LiveState
from reconciler.readmodel.loader import ReadModel, read_snapshot
from reconciler.readmodel.views import (
    BuildSetStatus,
    CommitRef,
    HostStatus,
    LedgerItem,
    StatusView,
    to_json,
)

__all__ = [
    "BuildSetStatus",
    "CommitRef",
    "HostStatus",
    "LedgerItem",
    "LedgerSnapshot",
    "Live",
    "LiveState",
    "ReadModel",
    "StatusView",
    "build_view",
    "desired_of",
    "read_snapshot",
    "to_json",
]
