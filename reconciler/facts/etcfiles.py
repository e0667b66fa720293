"""Configuration files read verbatim: ``/etc/make.conf``, ``/etc/src.conf``.

``None`` means the file does not exist (``cat`` failed), which differs from
an empty file.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.facts.probe import Output, Probe

PROBES = (
    Probe("make.conf", ("cat", "/etc/make.conf")),
    Probe("src.conf", ("cat", "/etc/src.conf")),
)


@dataclass(frozen=True)
class EtcFiles:
    make_conf: str | None
    src_conf: str | None


def parse(outputs: dict[str, Output]) -> EtcFiles:
    def text(name: str) -> str | None:
        out = outputs[name]
        return out.stdout if out.ok else None

    return EtcFiles(make_conf=text("make.conf"), src_conf=text("src.conf"))
