"""``plan --out FILE`` and ``apply FILE``: apply exactly the plan that was reviewed.

The file is JSON: the plan (``plan --format json``'s document), the config
commit it was made from, the repo, the selection (``--buildset``/``--host``)
and a digest of the facts it was made from. ``apply FILE`` observes the hosts
again, plans again from the same commit, and goes ahead only when the new plan
is the saved one; otherwise it refuses and shows how they differ (terraform's
saved plans). The digest says whether the facts moved at all; the plans decide.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import PlanStale, UsageError
from reconciler.facts.host import HostFacts
from reconciler.plan import Plan
from reconciler.statusstore import utc_now

KIND = "reconciler-saved-plan"
VERSION = 1


def facts_digest(facts: Mapping[str, HostFacts]) -> str:
    """sha256 over every host's facts, without when they were read."""
    canonical = {
        name: {k: v for k, v in hf.to_json().items() if k != "observed_at"}
        for name, hf in sorted(facts.items())
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SavedPlan:
    path: Path
    repo: Path
    generation: str
    buildsets: tuple[str, ...] | None
    hosts: tuple[str, ...] | None
    digest: str
    plan: dict[str, Any]


def save(
    path: Path,
    *,
    repo: Path,
    plan: Plan,
    facts: Mapping[str, HostFacts],
    buildsets: Sequence[str] | None,
    hosts: Sequence[str] | None,
) -> None:
    if plan.generation is None:
        raise UsageError(
            "--out saves the plan of a commit; the files on disk (--worktree, or a plain "
            "directory) cannot be found again by apply: commit them and plan again"
        )
    document = {
        "kind": KIND,
        "version": VERSION,
        "repo": str(repo.resolve()),
        "generation": plan.generation,
        "created": utc_now(),
        "selection": {
            "buildsets": list(buildsets) if buildsets else None,
            "hosts": list(hosts) if hosts else None,
        },
        "facts_digest": facts_digest(facts),
        "plan": plan.to_json(),
    }
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write it: {exc.strerror}") from exc


def is_saved_plan(path: Path) -> bool:
    """Whether ``path`` is a file that says it is a saved plan (apply FILE vs apply REPO)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return KIND.encode() in head


def load(path: Path) -> SavedPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a plan saved by `reconciler plan --out`: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UsageError(f"{path}: not a plan saved by `reconciler plan --out`")
    if data.get("version") != VERSION:
        raise UsageError(
            f"{path}: saved plan version {data.get('version')!r}; this reconciler reads "
            f"version {VERSION}: plan again"
        )
    selection = data.get("selection") or {}
    try:
        return SavedPlan(
            path=path,
            repo=Path(str(data["repo"])),
            generation=str(data["generation"]),
            buildsets=tuple(selection["buildsets"]) if selection.get("buildsets") else None,
            hosts=tuple(selection["hosts"]) if selection.get("hosts") else None,
            digest=str(data["facts_digest"]),
            plan=dict(data["plan"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: saved plan without {exc}: plan again") from exc


def step_lines(document: Mapping[str, Any]) -> list[str]:
    """A plan document as one line per host step (what a reviewer compares)."""
    lines = []
    shared = document.get("shared") or {}
    for hp in shared.get("hosts", ()):
        lines += [f"src host {hp['host']}: {s['kind']}: {s['reason']}" for s in hp["steps"]]
    for bs in document.get("buildsets", ()):
        lines.append(f"build set {bs['name']}: build {bs['build'][:12]}")
        for stage in bs["stages"]:
            for hp in stage["hosts"]:
                for step in hp["steps"]:
                    where = f"{bs['name']}/{stage['name']}/{hp['host']}"
                    lines.append(f"{where}: {step['kind']}: {step['reason']}")
        lines += [f"{bs['name']}: warning: {w}" for w in bs.get("warnings", ())]
    return lines


def check(saved: SavedPlan, fresh: Plan, facts: Mapping[str, HostFacts]) -> None:
    """Raise PlanStale (with the difference) unless ``fresh`` is the saved plan."""
    now = fresh.to_json()
    if json.dumps(now, sort_keys=True) == json.dumps(saved.plan, sort_keys=True):
        return
    old, new = step_lines(saved.plan), step_lines(now)
    if old == new:  # the steps agree, a detail does not: show the documents
        old = json.dumps(saved.plan, indent=1, sort_keys=True).splitlines()
        new = json.dumps(now, indent=1, sort_keys=True).splitlines()
    diff = difflib.unified_diff(
        old, new, fromfile=f"{saved.path} (saved)", tofile="now", lineterm="", n=1
    )
    moved = "the facts moved" if facts_digest(facts) != saved.digest else "the ledger moved"
    raise PlanStale(
        f"the saved plan {saved.path} is not what applying would do now ({moved} since it "
        "was made); nothing applied. Plan again and review the new plan.\n" + "\n".join(diff)
    )
