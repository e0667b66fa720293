"""make.conf and src.conf on a host: rewritten when they differ (or drift reported)."""

from __future__ import annotations

from reconciler.config import render
from reconciler.config.model import Host
from reconciler.facts.host import HostFacts
from reconciler.rollout.context import SetRun


def wanted(run: SetRun, host: Host) -> dict[str, str]:
    config, bs = run.ctx.config, run.buildset
    return {
        "/etc/make.conf": render.make_conf(config, bs, host),
        "/etc/src.conf": render.src_conf(config, bs),
    }


def differing(run: SetRun, host: Host, facts: HostFacts) -> dict[str, str]:
    """Paths whose content differs from what they must be, with the wanted text (pure)."""
    etc = facts.etc
    actual = {
        "/etc/make.conf": etc.make_conf if etc else None,
        "/etc/src.conf": etc.src_conf if etc else None,
    }
    return {path: text for path, text in wanted(run, host).items() if actual[path] != text}


def diff_lines(old: str | None, new: str) -> int:
    """How many lines differ, for the reason text ("make.conf differs: 2 lines")."""
    import difflib

    changes = difflib.ndiff((old or "").splitlines(), new.splitlines())
    return sum(1 for line in changes if line[:1] in "+-")


def write_configs(run: SetRun, host: Host, facts: HostFacts, *, reason: str) -> list[str]:
    """Write what differs; returns the paths written (nothing recorded here)."""
    written = []
    conn = run.ctx.conn(host)
    for path, text in differing(run, host, facts).items():
        conn.write_file(path, text)
        written.append(path)
    if written:
        run.ctx.say("config", f"wrote {', '.join(written)} ({reason})", run.buildset, host)
    return written
