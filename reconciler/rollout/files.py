"""Managed blocks in files the administrator also edits (/etc/exports, /etc/fstab)."""

from __future__ import annotations

BEGIN = "# BEGIN reconciler: lines up to END are managed; edits are overwritten"
END = "# END reconciler"


def merge_block(existing: str, lines: str) -> str:
    """``existing`` with its managed block replaced by ``lines`` (added at the end if absent).

    Everything outside the block is kept byte for byte; an empty ``lines``
    removes the block.
    """
    kept: list[str] = []
    inside = False
    for line in existing.splitlines():
        if line == BEGIN:
            inside = True
            continue
        if line == END and inside:
            inside = False
            continue
        if not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    body = [line for line in lines.splitlines() if line.strip()]
    if body:
        if kept:
            kept.append("")
        kept += [BEGIN, *body, END]
    return "\n".join(kept) + "\n" if kept else ""
