"""Many read-only commands in one SSH round trip, each output kept apart.

A host is read with one ``sh -c SCRIPT`` whose script runs every probe in
turn. Each probe is an argument list quoted with :func:`quote`; its output is
framed by marker lines carrying a per-call random nonce, so no file content
(say a make.conf) can forge a frame. Parsing stays per probe and pure: a probe
gets its own ``Output`` (exit status and stdout) exactly as if run alone.
Standard error is discarded: parsers read stdout, and the exit status says
whether a file or a command was there.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.transport.command import quote, sh


@dataclass(frozen=True)
class Probe:
    name: str  # unique within one batch: [a-z0-9_.:/-]
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Output:
    exit_code: int
    stdout: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


_NAME = re.compile(r"^[A-Za-z0-9_.:/+-]+$")


def new_nonce() -> str:
    return secrets.token_hex(8)


def batch_command(probes: Sequence[Probe], nonce: str) -> list[str]:
    """One ``sh -c`` argv that runs every probe; the nonce is passed as ``$1``."""
    if not re.fullmatch(r"[0-9a-f]{8,64}", nonce):
        raise ValueError("nonce must be hex")
    parts = []
    for probe in probes:
        if not _NAME.match(probe.name):
            raise ValueError(f"bad probe name {probe.name!r}")
        # printf's format is fixed; name and nonce are arguments, and the
        # probe itself is a quoted argument list: no value becomes syntax.
        parts.append(
            f'printf "\\n@@%s@@begin %s\\n" "$1" {quote([probe.name])}; '
            f"{quote(probe.argv)} 2>/dev/null </dev/null; "
            f'printf "\\n@@%s@@end %s\\n" "$1" "$?"'
        )
    if not parts:
        return sh("true", nonce)
    # Collected, then written at once: sshd sends a few large packets instead of
    # one or more per probe, and each packet costs the reconciler's SSH code
    # (paramiko, in Python) about a tenth of a millisecond: most of an idle
    # cycle's CPU per host. A command substitution drops only trailing newlines.
    return sh(f'out=$({"; ".join(parts)}); printf "%s\\n" "$out"', nonce)


def split_batch(stdout: str, nonce: str) -> dict[str, Output]:
    """Outputs by probe name; a probe with no end frame is missing."""
    begin = f"\n@@{nonce}@@begin "
    results: dict[str, Output] = {}
    for chunk in stdout.split(begin)[1:]:
        name, _, rest = chunk.partition("\n")
        end = rest.rfind(f"\n@@{nonce}@@end ")
        if end < 0:
            continue
        status_text = rest[end:].split("@@end ", 1)[1].strip()
        try:
            status = int(status_text)
        except ValueError:
            continue
        results[name] = Output(status, rest[:end])
    return results


def probe_outputs(probes: Sequence[Probe], outputs: Mapping[str, Output]) -> dict[str, Output]:
    """Outputs for exactly these probes; a missing one reads as failed (255)."""
    return {p.name: outputs.get(p.name, Output(255, "")) for p in probes}
