"""The src host's ``/usr/src``: revision and cleanliness.

``git -C /usr/src rev-parse HEAD`` gives the checked-out commit; ``status
--porcelain`` lists changed and untracked paths (empty = clean). A missing
repository makes rev-parse fail: ``present=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe
from reconciler.remote import SRC

PROBES = (
    Probe("src-head", ("git", "-C", SRC, "rev-parse", "HEAD")),
    Probe("src-status", ("git", "-C", SRC, "status", "--porcelain")),
)


@dataclass(frozen=True)
class SourceTree:
    present: bool
    revision: str | None = None
    changed: tuple[str, ...] = ()  # porcelain lines, e.g. " M sys/conf/newvers.sh"

    @property
    def clean(self) -> bool:
        return self.present and not self.changed


def parse(outputs: dict[str, Output]) -> SourceTree:
    head = outputs["src-head"]
    revision = head.stdout.strip()
    if not head.ok or not re.fullmatch(r"[0-9a-f]{40}", revision):
        return SourceTree(present=False)
    status = outputs["src-status"]
    changed = (
        tuple(line for line in status.stdout.splitlines() if line.strip()) if status.ok else ()
    )
    return SourceTree(present=True, revision=revision, changed=changed)
