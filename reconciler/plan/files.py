"""The config files a host must have, and how its own differ from them (pure).

``/etc/make.conf`` and ``/etc/src.conf`` are compared without their managed
header (which names the repo and commit): a commit that changes no rendered
byte below it changes nothing. Differences come as a reason in words
(``make.conf differs: 1 line``) and as a unified diff, for ``plan`` to show.
"""

from __future__ import annotations

import difflib

from reconciler.config import render
from reconciler.config.model import BuildSet, Config, Host
from reconciler.facts.host import HostFacts


def body(text: str) -> list[str]:
    """A rendered file without its managed header lines."""
    lines = text.splitlines()
    while lines and (
        lines[0].startswith(render.MANAGED_HEADER_PREFIX) or lines[0].startswith("# Source: ")
    ):
        lines.pop(0)
    return lines


def _differs(name: str, actual: str | None, desired: str) -> str | None:
    if actual is None:
        return f"{name} missing"
    old, new = body(actual), body(desired)
    if old == new:
        return None
    changed = sum(
        1
        for line in difflib.unified_diff(old, new, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )
    return f"{name} differs: {changed} line{'s' if changed != 1 else ''}"


def wanted_files(config: Config, bs: BuildSet, host: Host) -> dict[str, str]:
    """The config files a host of ``bs`` must have, path -> text."""
    return {
        "/etc/make.conf": render.make_conf(config, bs, host),
        "/etc/src.conf": render.src_conf(config, bs),
    }


def unified_diff(path: str, old: list[str], new: list[str]) -> str:
    """``old`` (on the host) against ``new`` (desired), as ``diff -u`` prints it."""
    return "\n".join(
        difflib.unified_diff(
            old, new, fromfile=f"{path} (on the host)", tofile=f"{path} (desired)", lineterm=""
        )
    )


def _actual_files(facts: HostFacts) -> dict[str, str | None]:
    etc = facts.etc
    return {
        "/etc/make.conf": etc.make_conf if etc else None,
        "/etc/src.conf": etc.src_conf if etc else None,
    }


def config_differences(
    config: Config, bs: BuildSet, host: Host, facts: HostFacts
) -> dict[str, str]:
    """Path -> why, for every config file whose content (below the header) differs."""
    actual = _actual_files(facts)
    found = {}
    for path, text in wanted_files(config, bs, host).items():
        why = _differs(path.rsplit("/", 1)[1], actual[path], text)
        if why:
            found[path] = why
    return found


def config_diffs(config: Config, bs: BuildSet, host: Host, facts: HostFacts) -> dict[str, str]:
    """Path -> unified diff (below the managed header) of each config file present that differs.

    A missing file has no diff: the reason says it is missing, and all of it is written.
    """
    actual = _actual_files(facts)
    found = {}
    for path, text in wanted_files(config, bs, host).items():
        have = actual[path]
        if have is not None and body(have) != body(text):
            found[path] = unified_diff(path, body(have), body(text))
    return found
