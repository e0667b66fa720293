"""The build id: one sha256 over every input of a build set's build, and nothing else.

Same id, same objects: a build host that already holds ``/usr/obj/<id>``
does not build again, and a test stage passed with an id is what lets
production install that id.

Inputs (encoding version 1), in this order:

1. ``revision`` — the source commit (40 hex, from fleet.yaml);
2. ``arch`` — the TARGET;
3. ``src.conf`` — the set's src.conf text, verbatim;
4. ``make.conf`` — the set's make.conf text, verbatim;
5. ``kernconfs`` — the ordered KERNCONF list (:attr:`BuildSet.kernconfs`,
   build host's first: the order decides which kernel a plain installkernel installs);
6. ``kernel:<IDENT>`` — the text of every custom kernel config in that list and of
   every ``kernels/`` file those include, transitively (DESIGN.md's list forgot
   these: a changed ``kernels/WEB`` must rebuild even though nothing else moved).
   Stock configs (GENERIC, ...) are covered by the revision.

Deliberately *not* inputs: the rendered files (their header names the config
commit, which changes on every edit), addresses, ports, users, stages, health
checks, batch size, soak and every other rollout setting, and the ports lines
(they do not change what buildworld/buildkernel produce).

Canonical encoding: the UTF-8 bytes of ``reconciler-build-id-v1`` followed by,
for each input in the order above, ``name NUL decimal-length NUL bytes``. Length
prefixes make the encoding unambiguous whatever the texts contain. A change to
this encoding must bump the version, which changes every id (forcing one
rebuild), never silently reuse one.
"""

from __future__ import annotations

import hashlib

from reconciler.config import kernels as kconf
from reconciler.config.model import BuildSet, Config
from reconciler.remote import short as short

VERSION = b"reconciler-build-id-v1"


def _record(name: str, data: str) -> bytes:
    raw = data.encode("utf-8")
    return name.encode("utf-8") + b"\0" + str(len(raw)).encode("ascii") + b"\0" + raw


def inputs(config: Config, buildset: BuildSet | str) -> list[tuple[str, str]]:
    """The named inputs of the build id, in encoding order (useful to explain a rebuild)."""
    bs = config.buildset(buildset) if isinstance(buildset, str) else buildset
    texts = {k.ident: k.text for k in config.kernels}
    records = [
        ("revision", config.source.revision),
        ("arch", bs.arch),
        ("src.conf", bs.src_conf),
        ("make.conf", bs.make_conf),
        ("kernconfs", " ".join(bs.kernconfs)),
    ]
    seen: list[str] = []
    for kernconf in bs.kernconfs:
        for ident in kconf.closure(kernconf, texts):
            if ident not in seen:
                seen.append(ident)
                records.append((f"kernel:{ident}", texts[ident]))
    return records


def build_id(config: Config, buildset: BuildSet | str) -> str:
    """64 hex digits identifying the build of ``buildset`` (see the module docstring)."""
    digest = hashlib.sha256(VERSION)
    for name, data in inputs(config, buildset):
        digest.update(_record(name, data))
    return digest.hexdigest()
