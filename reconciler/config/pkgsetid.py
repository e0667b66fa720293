"""The package set id: one sha256 over every input of a build set's package repository.

Same id, same repository: a build host that already holds a finished
repository for the id builds nothing, and hosts that installed from it need
no new boot environment for their packages. Content-addressed like the build
id (buildid.py), and built on it: packages are built in a jail of the set's
world, so a new world is a new package set.

Inputs (encoding version 1), in this order:

1. ``ports-revision`` — the ports tree commit (fleet.yaml ``ports.revision``);
2. ``build`` — the set's build id (the world the jail is made from; it covers
   the set's make.conf, which the reconciler copies into the ports build's
   make.conf too, so CPUTYPE or DEFAULT_VERSIONS there rebuild the packages);
3. ``method`` — poudriere or make (different builders, different packages);
4. ``origins`` — every origin the repository holds, sorted, one per line: the
   set's and every host's extras (one repository serves the whole set);
5. ``ports/make.conf`` — ``buildsets/<set>/ports/make.conf`` verbatim ("" when absent);
6. ``options:<NAME>`` — each options file, by OPTIONS_NAME in name order;
7. ``signing`` — the signing key's path on the build host ("" when unsigned):
   a repository signed (or not) is a different catalogue for the hosts.

Deliberately *not* inputs: which host installs which extras (the repository
is the same), the FreeBSD repository switch and ``keep`` (host and build-host
housekeeping), url and branch of the ports tree (the revision pins the
content), and the DISTDIR/WRKDIRPREFIX/PACKAGES lines of make.conf, which
name places, not what is built (DESIGN.md lists "the ports lines of
make.conf": for the ports build those are the set's make.conf, inside the
build id, and ports/make.conf).

Canonical encoding: ``reconciler-package-set-id-v1`` then, per input,
``name NUL decimal-length NUL bytes`` (as the build id). A change to the
encoding must bump the version.
"""

from __future__ import annotations

import hashlib

from reconciler.config.buildid import build_id
from reconciler.config.model import BuildSet, Config
from reconciler.remote import short as short

VERSION = b"reconciler-package-set-id-v1"


def _record(name: str, data: str) -> bytes:
    raw = data.encode("utf-8")
    return name.encode("utf-8") + b"\0" + str(len(raw)).encode("ascii") + b"\0" + raw


def inputs(config: Config, buildset: BuildSet | str) -> list[tuple[str, str]]:
    """The named inputs of the package set id, in encoding order.

    Raises ValueError for a set without packages (a validated config lists
    packages only with a pinned ports tree).
    """
    bs = config.buildset(buildset) if isinstance(buildset, str) else buildset
    packages = bs.packages
    if packages is None or config.ports is None or config.ports.revision is None:
        raise ValueError(f"build set {bs.name!r} has no package set")
    records = [
        ("ports-revision", config.ports.revision),
        ("build", build_id(config, bs)),
        ("method", packages.method),
        ("origins", "\n".join(packages.all_origins)),
        ("ports/make.conf", packages.make_conf),
    ]
    records += [(f"options:{opt.name}", opt.text) for opt in packages.options]
    records.append(("signing", packages.signing.key if packages.signing else ""))
    return records


def package_set_id(config: Config, buildset: BuildSet | str) -> str | None:
    """64 hex digits identifying the set's package repository; None when it lists no packages."""
    bs = config.buildset(buildset) if isinstance(buildset, str) else buildset
    if bs.packages is None:
        return None
    digest = hashlib.sha256(VERSION)
    for name, data in inputs(config, bs):
        digest.update(_record(name, data))
    return digest.hexdigest()
