"""A draft as config repo files (pure): path -> text.

Every value chosen rather than read carries a comment saying why (build host,
test host, src host, install method, revision), so the first review of the
adopted repo starts from reasons. ``buildsets/<set>/make.conf`` and
``src.conf`` hold exactly what the hosts have (owned lines aside) and no
comment of ours: the reconciler renders them onto the hosts verbatim, and an
extra line would show as a difference on every host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from reconciler.adopt.draft import Draft, KernelDraft, SetDraft
from reconciler.adopt.reading import HostReading
from reconciler.adopt.resolve import Resolved
from reconciler.config.knownhosts import host_strings

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*\Z")
# Plain scalars YAML (1.1 or 1.2) would read as something other than a string.
_SPECIAL = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}


def scalar(value: str) -> str:
    """A YAML scalar for ``value``: plain when unambiguous, else double-quoted (JSON)."""
    if _PLAIN.match(value) and value.lower() not in _SPECIAL:
        return value
    return json.dumps(value)


def _comment(text: str) -> str:
    return "  # " + " ".join(text.split()) if text else ""


def _host_line(reading: HostReading, stage: str | None, note: str) -> str:
    target = reading.target
    fields = [f"address: {json.dumps(target.address)}", f"kernconf: {scalar(reading.ident or '')}"]
    if stage:
        fields.append(f"stage: {stage}")
    if target.port != 22:
        fields.append(f"port: {target.port}")
    if target.user != "root":
        fields.append(f"user: {scalar(target.user)}")
    return f"  {scalar(target.name)}: {{{', '.join(fields)}}}{_comment(note)}"


def buildset_yaml(s: SetDraft, when: str) -> str:
    names = ", ".join(h.name for h in s.hosts)
    arch = f"{s.arch} ({s.processor})" if s.processor and s.processor != s.arch else s.arch
    lines = [
        f"# Build set {s.name}, as `reconciler init` found it on {when}: {names}",
        f"# share src.conf, make.conf (the lines the reconciler owns aside) and arch {arch}.",
        f"arch: {s.arch}",
        f"build_host: {scalar(s.build_host)}{_comment(s.build_why)}",
        f"jobs: {s.jobs}{_comment(s.jobs_why)}",
        "hosts:",
    ]
    for reading in s.hosts:
        test = reading.name in s.test_hosts
        note = f"test host: {s.test_why}" if test else ""
        lines.append(_host_line(reading, "test" if test else None, note))
    lines += ["rollout:", f"  install: {s.install}{_comment(s.install_why)}"]
    return "\n".join(lines) + "\n"


def fleet_yaml(draft: Draft, source: Resolved, when: str) -> str:
    hosts = sum(len(s.hosts) for s in draft.sets)
    sets = len(draft.sets)
    return "\n".join(
        [
            f"# The fleet as `reconciler init` found it on {when}: {hosts} host"
            f"{'s' if hosts != 1 else ''} in {sets} build set{'s' if sets != 1 else ''}.",
            "# Each chosen value says why; from here on, change them by pull request.",
            "source:",
            f"  url: {json.dumps(source.url)}{_comment(source.url_why)}",
            f"  branch: {json.dumps(source.branch)}{_comment(source.branch_why)}",
            f"  revision: {json.dumps(source.revision)}{_comment(source.revision_why)}",
            f"src_host: {scalar(draft.src_host)}{_comment(draft.src_why)}",
            "",
        ]
    )


def kernel_text(kernel: KernelDraft, when: str) -> str:
    """``kernels/<IDENT>``: a reconstructed config says so; a copied file stays as it was."""
    if not kernel.why.startswith("kern.conftxt"):
        return kernel.text
    return (
        f"# {kernel.ident}: from {kernel.why}.\n"
        f"# Written by `reconciler init` on {when}; edit it like any kernel config.\n" + kernel.text
    )


def known_hosts(readings: Sequence[HostReading], when: str) -> str:
    lines = [
        f"# Host keys pinned by `reconciler init` on {when}: each fingerprint was confirmed",
        "# at the prompt or with --accept-fingerprint. Unknown or changed keys are refused.",
    ]
    for r in sorted(readings, key=lambda r: r.name):
        patterns = ",".join(host_strings(r.name, r.target.address, r.target.port))
        lines.append(f"{patterns} {r.key.pin}")
    return "\n".join(lines) + "\n"


def files(draft: Draft, source: Resolved, when: str) -> dict[str, str]:
    """Every file of the adopted config repo, by path."""
    found = {"fleet.yaml": fleet_yaml(draft, source, when)}
    for s in draft.sets:
        base = f"buildsets/{s.name}"
        found[f"{base}/buildset.yaml"] = buildset_yaml(s, when)
        found[f"{base}/make.conf"] = s.make_conf
        found[f"{base}/src.conf"] = s.src_conf
    for kernel in draft.kernels:
        found[f"kernels/{kernel.ident}"] = kernel_text(kernel, when)
    found["known_hosts"] = known_hosts([h for s in draft.sets for h in s.hosts], when)
    return found
