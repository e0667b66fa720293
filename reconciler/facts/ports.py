"""The src host's ports tree: its revision, cleanliness, and the origins at the pinned commit.

``git -C TREE rev-parse HEAD`` and ``status --porcelain`` as for /usr/src
(source.py). Whether each origin the config lists exists is read from git's
object store at the *pinned* revision, whatever is checked out: ``git
cat-file -e REV:<origin>/Makefile`` (exit 0 when the blob exists), after
``git cat-file -e REV^{commit}`` says whether the commit was fetched at all.
This is where validation's promise ("origins are checked against the pinned
tree") is kept, at plan time and read-only (config/portsfiles.py says why).
The probe prints ``revision present|absent`` then ``present <origin>`` or
``absent <origin>`` lines; values reach the script only as positional
parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.facts.probe import Output, Probe
from reconciler.transport.command import sh

_ORIGINS = (
    "tree=$1; rev=$2; shift 2; "
    'if git -C "$tree" cat-file -e "$rev^{commit}" 2>/dev/null; then echo "revision present"; '
    'for o do if git -C "$tree" cat-file -e "$rev:$o/Makefile" 2>/dev/null; '
    'then echo "present $o"; else echo "absent $o"; fi; done; '
    'else echo "revision absent"; fi'
)


def probes(tree: str, revision: str, origins: tuple[str, ...]) -> tuple[Probe, ...]:
    """``origins`` without flavors (a flavor is the port's own business, checked by its build)."""
    return (
        Probe("ports-head", ("git", "-C", tree, "rev-parse", "HEAD")),
        Probe("ports-status", ("git", "-C", tree, "status", "--porcelain")),
        Probe("ports-origins", tuple(sh(_ORIGINS, tree, revision, *origins))),
    )


@dataclass(frozen=True)
class PortsCheckout:
    present: bool
    revision: str | None = None
    changed: tuple[str, ...] = ()
    pinned_fetched: bool | None = None  # None: not asked (no probe output)
    origins: dict[str, bool] = field(default_factory=dict)  # origin -> has a Makefile at the pin

    @property
    def clean(self) -> bool:
        return self.present and not self.changed

    @property
    def missing_origins(self) -> list[str]:
        """Origins without a Makefile at the pinned revision, sorted."""
        return sorted(o for o, there in self.origins.items() if not there)


def parse(outputs: dict[str, Output]) -> PortsCheckout:
    head = outputs["ports-head"]
    revision = head.stdout.strip()
    listed = outputs["ports-origins"]
    fetched: bool | None = None
    origins: dict[str, bool] = {}
    for line in listed.stdout.splitlines() if listed.ok else ():
        word, _, value = line.partition(" ")
        if word == "revision":
            fetched = value.strip() == "present"
        elif word in ("present", "absent") and value:
            origins[value.strip()] = word == "present"
    if not head.ok or len(revision) != 40 or not all(c in "0123456789abcdef" for c in revision):
        return PortsCheckout(present=False, pinned_fetched=fetched, origins=origins)
    status = outputs["ports-status"]
    changed = (
        tuple(line for line in status.stdout.splitlines() if line.strip()) if status.ok else ()
    )
    return PortsCheckout(True, revision, changed, fetched, origins)
