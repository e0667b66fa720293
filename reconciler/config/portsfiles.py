"""The ports half of a build set: its ``packages:``, ``ports/make.conf`` and options files.

A build set that lists packages may carry, next to its buildset.yaml::

    buildsets/<set>/ports/make.conf                     # make.conf lines for the ports build
    buildsets/<set>/ports/options/<category>_<port>/options

The options directory is poudriere's (``poudriere options -o``, poudriere(8)
CUSTOMIZATION): one directory per port named after its OPTIONS_NAME, the
origin with its first ``/`` made ``_`` (ports' ``Mk/bsd.options.mk``:
``OPTIONS_NAME?= ${PKGORIGIN:S/\\//_/}``, ``OPTIONS_FILE?=
${PORT_DBDIR}/${OPTIONS_NAME}/options``), holding the ``options`` file that
``make config`` writes: ``OPTIONS_FILE_SET+=NAME`` and
``OPTIONS_FILE_UNSET+=NAME`` lines (plus ``_OPTIONS_READ=`` and
``_FILE_COMPLETE_OPTIONS_LIST=``, and comments). Flavors of one port share
its options (the origin without ``@flavor`` names them).

Whether an origin exists is a fact of the pinned ports tree, which lives on
the src host: validation never touches a host and the reconciler keeps no
copy of a ports tree (a git repository of over a gigabyte), so ``validate``
checks the origins' form only, and the src host's facts say, at plan time,
whether each origin has a Makefile at the pinned revision
(``git cat-file -e REV:<origin>/Makefile``, reconciler/facts/ports.py).

Pure: reading goes through the loader's reader; the checks take parsed files
and return problems, skipping values the schema already rejected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.repofiles import Reader
from reconciler.config.yamldoc import Document
from reconciler.errors import Problem

#: The schema's ``origin`` pattern: category/port[@flavor].
ORIGIN = re.compile(r"^([a-z0-9][a-z0-9_-]*)/([A-Za-z0-9][A-Za-z0-9._+-]*)(?:@([A-Za-z0-9_]+))?\Z")
#: The schema's host name pattern (values it rejected are skipped here).
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_OPTIONS_DIR = re.compile(r"^[a-z0-9][a-z0-9_-]*_[A-Za-z0-9][A-Za-z0-9._+-]*\Z")
_OPTION_LINE = re.compile(r"^(OPTIONS_FILE_SET|OPTIONS_FILE_UNSET)\+=([A-Za-z0-9_]*)\s*$")
_OPTION_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_]*\Z")
_META_LINE = re.compile(r"^(_OPTIONS_READ|_FILE_COMPLETE_OPTIONS_LIST)=")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*(?:[?+:!]?=)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: At most this many entries under ports/options (a hostile repo cannot make us read more).
MAX_OPTIONS = 512

#: make.conf variables of the ports build the reconciler (or poudriere) sets itself.
PORTS_OWNED = {
    "PORTSDIR": "poudriere mounts the shared ports tree at /usr/ports in its jail",
    "PORT_DBDIR": "the options come from buildsets/<set>/ports/options/",
    "PACKAGES": "the reconciler chooses where the set's repository goes",
    "DISTDIR": "set ports.distdir in buildset.yaml instead",
    "WRKDIRPREFIX": "set ports.wrkdirprefix in buildset.yaml instead",
    "KERNCONF": "ports builds do not use it; set each host's kernconf in buildset.yaml",
    "DESTDIR": "the reconciler installs packages into a boot environment with pkg -c",
    "MAKEOBJDIRPREFIX": "the reconciler sets it per build, from the environment",
}


def split_origin(spec: str) -> tuple[str, str | None]:
    """``devel/py-six@py311`` -> (``devel/py-six``, ``py311``)."""
    origin, _, flavor = spec.partition("@")
    return origin, flavor or None


def options_name(spec: str) -> str:
    """The port's OPTIONS_NAME (bsd.options.mk): the origin with its first '/' made '_'."""
    return split_origin(spec)[0].replace("/", "_", 1)


@dataclass
class PortsDir:
    """``buildsets/<set>/ports/`` as read (present=False when there is none)."""

    present: bool = False
    make_conf: str | None = None
    options: dict[str, str] = field(default_factory=dict)  # OPTIONS_NAME -> options text


TextOf = Callable[[str], "str | None"]


def read(reader: Reader, base: str, text_of: TextOf) -> tuple[PortsDir, list[Problem]]:
    """Read ``<base>/ports`` (``base`` is ``buildsets/<set>``) with the loader's ``text_of``."""
    root = f"{base}/ports"
    entry = reader.entry(root)
    if entry is None:
        return PortsDir(), []
    if entry.kind != "dir":
        return PortsDir(), [
            Problem(root, 0, 0, "not a directory", "ports/ holds make.conf and options/")
        ]
    found = PortsDir(present=True)
    problems: list[Problem] = []
    for item in reader.listdir(root):
        path = f"{root}/{item.name}"
        if item.name == "make.conf":
            found.make_conf = text_of(path)
        elif item.name == "options" and item.kind == "dir":
            problems.extend(_read_options(reader, path, text_of, found))
        else:
            problems.append(
                Problem(
                    path,
                    0,
                    0,
                    "unexpected entry",
                    f"{root}/ holds make.conf and options/<category>_<port>/options only",
                )
            )
    return found, problems


def _read_options(reader: Reader, root: str, text_of: TextOf, found: PortsDir) -> list[Problem]:
    problems: list[Problem] = []
    items = reader.listdir(root)
    if len(items) > MAX_OPTIONS:
        problems.append(
            Problem(root, 0, 0, f"{len(items)} entries; the limit is {MAX_OPTIONS}", "")
        )
    for item in items[:MAX_OPTIONS]:
        path = f"{root}/{item.name}"
        if item.kind != "dir" or not _OPTIONS_DIR.match(item.name):
            problems.append(
                Problem(
                    path,
                    0,
                    0,
                    f"{item.name!r} is not a port's options directory",
                    "poudriere's layout: options/<category>_<port>/options, e.g. "
                    "options/www_nginx/options",
                )
            )
            continue
        inner = reader.listdir(path)
        names = [i.name for i in inner]
        for other in names:
            if other != "options":
                problems.append(
                    Problem(f"{path}/{other}", 0, 0, "unexpected entry", "only 'options' goes here")
                )
        if "options" not in names:
            problems.append(
                Problem(f"{path}/options", 0, 0, "missing file", "or remove the empty directory")
            )
            continue
        text = text_of(f"{path}/options")
        if text is not None:
            found.options[item.name] = text
    return problems


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _origins(value: Any) -> list[tuple[int, str]]:
    """(index, origin) of the well-formed entries of a list (the schema reported the rest)."""
    items = value if isinstance(value, list) else []
    return [(i, o) for i, o in enumerate(items) if isinstance(o, str) and ORIGIN.match(o)]


def fleet_ports_rules(fleet: Document) -> Iterator[Problem]:
    """``ports:`` keeps a tree at a commit with url, branch and revision together, like source:."""
    ports = _mapping(_mapping(fleet.data).get("ports"))
    given = [k for k in ("url", "branch", "revision") if k in ports]
    if given and len(given) < 3:
        missing = [k for k in ("url", "branch", "revision") if k not in given]
        yield fleet.problem(
            ("ports", given[0]),
            f"ports: {' and '.join(given)} without {' and '.join(missing)}",
            "give url, branch and revision together: the src host fetches the branch from "
            "the url and checks the revision out (or give only tree, for a ports tree you "
            "keep yourself)",
            key=True,
        )


def buildset_rules(
    name: str, doc: Document, ports: PortsDir, fleet: Document | None
) -> Iterator[Problem]:
    """Every problem of one build set's packages, options and ports/make.conf."""
    data = _mapping(doc.data)
    packages = data.get("packages")
    base = f"buildsets/{name}"
    if not isinstance(packages, dict):
        if ports.present and packages is None:
            yield Problem(
                f"{base}/ports",
                0,
                0,
                f"build set {name!r} lists no packages, so nothing reads its ports/ directory",
                "add packages: with origins: to buildset.yaml, or remove the directory",
            )
        return
    fleet_ports = _mapping(_mapping(fleet.data if fleet else None).get("ports"))
    if fleet is not None and not any(k in fleet_ports for k in ("url", "branch", "revision")):
        # (a partly pinned tree is fleet.yaml's own problem, reported there)
        yield doc.problem(
            ("packages",),
            f"build set {name!r} lists packages, but fleet.yaml pins no ports tree",
            "add url, branch and revision under ports: in fleet.yaml: every package set is "
            "built from that commit",
            key=True,
        )
    listed = _origins(packages.get("origins"))
    seen: dict[str, int] = {}
    for index, origin in listed:
        if origin in seen:
            yield doc.problem(
                ("packages", "origins", index),
                f"packages.origins[{index}]: {origin!r} is listed twice "
                f"(first as item {seen[origin]})",
                "remove one of them",
            )
        else:
            seen[origin] = index
    every = set(seen)
    hosts = set(_mapping(data.get("hosts")))
    for host, extra in _mapping(packages.get("hosts")).items():
        if _HOST.match(host) and hosts and host not in hosts:
            close = difflib.get_close_matches(host, sorted(hosts), n=1)
            yield doc.problem(
                ("packages", "hosts", host),
                f"packages.hosts.{host}: no host {host!r} in build set {name!r}",
                f"did you mean {close[0]!r}?" if close else f"name one of: {', '.join(hosts)}",
                key=True,
            )
        mine: set[str] = set()
        for index, origin in _origins(extra):
            if origin in seen:
                yield doc.problem(
                    ("packages", "hosts", host, index),
                    f"packages.hosts.{host}[{index}]: {origin!r} is already in packages.origins",
                    "every host of the set installs those; remove it here",
                )
            elif origin in mine:
                yield doc.problem(
                    ("packages", "hosts", host, index),
                    f"packages.hosts.{host}[{index}]: {origin!r} is listed twice",
                    "remove one of them",
                )
            mine.add(origin)
        every |= mine
    known = sorted({options_name(o) for o in every})
    # With a malformed origin (the schema's complaint) no one knows what the set builds.
    lists = [packages.get("origins"), *_mapping(packages.get("hosts")).values()]
    complete = all(
        isinstance(items, list) and len(_origins(items)) == len(items) for items in lists
    ) and bool(packages.get("origins"))
    for opt_name, text in sorted(ports.options.items()):
        path = f"{base}/ports/options/{opt_name}/options"
        if complete and opt_name not in known:
            close = difflib.get_close_matches(opt_name, known, n=1)
            yield Problem(
                path,
                0,
                0,
                f"options for {opt_name!r}, a port build set {name!r} does not build",
                f"did you mean {close[0]!r}?"
                if close
                else "name the directory <category>_<port> after an origin in packages: "
                f"({', '.join(known) or 'none listed'})",
            )
        yield from options_file_problems(path, text)
    if ports.make_conf is not None:
        yield from make_conf_problems(f"{base}/ports/make.conf", ports.make_conf)


def options_file_problems(path: str, text: str) -> Iterator[Problem]:
    """Lines of an options file that ``make config`` would not have written."""
    decided: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or _META_LINE.match(line):
            if _CONTROL.search(raw):
                yield Problem(path, number, 1, "contains a control character", "remove it")
            continue
        match = _OPTION_LINE.match(line)
        if match is None:
            yield Problem(
                path,
                number,
                raw.find(line) + 1,
                f"not an options line: {line[:60]!r}",
                "options files hold OPTIONS_FILE_SET+=NAME and OPTIONS_FILE_UNSET+=NAME "
                "lines, as 'make config' and 'poudriere options' write them",
            )
            continue
        what, option = match.group(1), match.group(2)
        column = raw.find(option, raw.find("+=")) + 1
        if not _OPTION_NAME.match(option):
            yield Problem(
                path,
                number,
                column,
                f"{option!r} is not an option name",
                "option names are upper-case letters, digits and '_', e.g. HTTP_SSL",
            )
            continue
        verb = "set" if what == "OPTIONS_FILE_SET" else "unset"
        earlier = decided.get(option)
        if earlier is not None and earlier[0] != verb:
            yield Problem(
                path,
                number,
                column,
                f"option {option} is {verb} here and {earlier[0]} on line {earlier[1]}",
                "keep one of the two lines",
            )
        decided.setdefault(option, (verb, number))


def make_conf_problems(path: str, text: str) -> Iterator[Problem]:
    """Assignments in ports/make.conf to what the reconciler or poudriere sets itself."""
    continued = False
    for number, line in enumerate(text.splitlines(), start=1):
        was_continued, continued = continued, line.rstrip().endswith("\\")
        if _CONTROL.search(line):
            yield Problem(path, number, 1, "contains a control character", "remove it")
            continue
        if was_continued:
            continue
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) in PORTS_OWNED:
            var = match.group(1)
            yield Problem(
                path,
                number,
                match.start(1) + 1,
                f"sets {var}, which the reconciler owns for the ports build",
                f"remove it: {PORTS_OWNED[var]}",
            )
