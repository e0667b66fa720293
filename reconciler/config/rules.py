"""The semantic rules of the config repo (DESIGN.md "Rules `reconciler validate` enforces").

Pure: takes the parsed files, returns every problem. Runs after the schema
check but must not trust it: a value the schema rejected is simply skipped
here, so one mistake yields one message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.config import kernels as kconf
from reconciler.config import portsfiles, textrules, timespec
from reconciler.config.knownhosts import KNOWN_HOSTS, PinIndex, host_strings
from reconciler.config.model import STOCK_KERNCONFS, Host
from reconciler.config.yamldoc import Document, Where
from reconciler.errors import Problem

#: Variables the reconciler renders itself (or, for MAKEOBJDIRPREFIX, that only
#: work from the environment, per UPDATING), so make.conf/src.conf may not set them.
OWNED_VARS = ("KERNCONF", "DESTDIR", "MAKEOBJDIRPREFIX")
PORTS_VARS = ("DISTDIR", "WRKDIRPREFIX", "PACKAGES")

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*(?:[?+:!]?=)")
# The schema's patterns, for skipping values it already rejected.
KERNCONF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class BuildsetFiles:
    """The files of ``buildsets/<name>/`` as read (None where missing or unreadable)."""

    name: str
    doc: Document | None
    make_conf: str | None
    src_conf: str | None
    ports: portsfiles.PortsDir = field(default_factory=portsfiles.PortsDir)


@dataclass
class RepoFiles:
    fleet: Document | None
    buildsets: list[BuildsetFiles] = field(default_factory=list)
    kernels: dict[str, str] = field(default_factory=dict)
    # every valid name under kernels/, read or not (an unreadable one has its own problem)
    kernel_files: set[str] = field(default_factory=set)
    known_hosts: str | None = None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def control_characters(doc: Document) -> Iterator[Problem]:
    """Strings carrying control characters (newlines included), which no pattern should pass.

    jsonschema evaluates ``pattern`` with Python's ``re.search``, where ``$``
    also matches before a final newline, so ``"GENERIC\\n"`` would slip through
    the schema; this check closes that gap for every value. Health checks are
    shell commands by design and may span lines.
    """

    def walk(value: Any, where: Where) -> Iterator[Problem]:
        if isinstance(value, dict):
            for key, item in value.items():
                if _CONTROL_OR_NEWLINE.search(key):
                    yield doc.problem(
                        (*where, key),
                        f"key {key!r} contains a control character",
                        "remove it",
                        key=True,
                    )
                yield from walk(item, (*where, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, (*where, index))
        elif isinstance(value, str):
            shell = (len(where) >= 2 and where[-2] in ("health_checks", "smoke_checks")) or (
                len(where) >= 3 and where[-3] == "health_checks" and where[-1] == "command"
            )
            if (_CONTROL if shell else _CONTROL_OR_NEWLINE).search(value):
                dotted = ".".join(str(p) for p in where)
                yield doc.problem(
                    where,
                    f"{dotted}: {value!r} contains a control character (newline, tab, ...)",
                    "write the value on one line without control characters",
                )

    yield from walk(doc.data, ())


def owned_assignments(path: str, text: str, owned: tuple[str, ...]) -> Iterator[Problem]:
    """Lines of a make.conf/src.conf that assign a variable the reconciler owns.

    ``VAR=``, ``VAR?=``, ``VAR+=``, ``VAR:=``, ``VAR!=`` count; conditionals
    (``.if``) and continuation lines do not.
    """
    continued = False
    for number, line in enumerate(text.splitlines(), start=1):
        was_continued, continued = continued, line.rstrip().endswith("\\")
        if was_continued:
            continue
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) in owned:
            var = match.group(1)
            if var == "MAKEOBJDIRPREFIX":
                hint = (
                    "remove it: MAKEOBJDIRPREFIX works only from the environment "
                    "(UPDATING), and the reconciler sets it per build"
                )
            elif var in PORTS_VARS:
                hint = f"remove it: set ports.{var.lower()} in buildset.yaml instead"
            elif var == "KERNCONF":
                hint = (
                    "remove it: set each host's kernconf in buildset.yaml; "
                    "the reconciler renders KERNCONF"
                )
            else:
                hint = (
                    "remove it: the reconciler sets DESTDIR itself "
                    "when installing into a boot environment"
                )
            yield Problem(
                path, number, match.start(1) + 1, f"sets {var}, which the reconciler owns", hint
            )


def _buildset_rules(
    bs: BuildsetFiles, fleet_hosts: dict[str, tuple[str, Document, Where]], repo: RepoFiles
) -> Iterator[Problem]:
    doc = bs.doc
    if doc is None:
        return
    data = _mapping(doc.data)
    hosts = _mapping(data.get("hosts"))
    build_host = _text(data.get("build_host"))
    if build_host is not None and HOST_NAME.match(build_host) and hosts and build_host not in hosts:
        elsewhere = fleet_hosts.get(build_host)
        where = f" (it is in build set {elsewhere[0]!r})" if elsewhere else ""
        yield doc.problem(
            ("build_host",),
            f"build_host {build_host!r} is not a host of build set {bs.name!r}{where}",
            f"name one of: {', '.join(hosts)}",
        )
    stages = [_mapping(h).get("stage", "production") for h in hosts.values()]
    if hosts and all(stage == "production" for stage in stages):
        yield doc.problem(
            ("hosts",),
            f"build set {bs.name!r} has no test host",
            "mark at least one host 'stage: test'; "
            "it installs first and must stay healthy before production follows",
        )
    for name, spec in hosts.items():
        kernconf = _text(_mapping(spec).get("kernconf"))
        if kernconf is None or not KERNCONF_NAME.match(kernconf):
            continue  # the schema reported it
        if kernconf not in STOCK_KERNCONFS and kernconf not in repo.kernel_files:
            stock = ", ".join(sorted(STOCK_KERNCONFS))
            yield doc.problem(
                ("hosts", name, "kernconf"),
                f"hosts.{name}.kernconf: no kernel config {kernconf!r}",
                f"add the file kernels/{kernconf} or use a stock config ({stock})",
            )
    rollout = _mapping(data.get("rollout"))
    if rollout.get("install") == "in-place":
        for key in ("confirm_timeout", "smoke_checks"):
            if key in rollout:
                yield doc.problem(
                    ("rollout", key),
                    f"rollout.{key}: install: in-place has no new boot environment to "
                    "smoke-test before the reboot, nor a previous one for a watchdog to go back to",
                    f"remove rollout.{key}, or use install: boot-environment",
                    key=True,
                )
    owned: tuple[str, ...] = OWNED_VARS
    if data.get("ports") is not None:
        owned += PORTS_VARS
    for filename, text in (("make.conf", bs.make_conf), ("src.conf", bs.src_conf)):
        if text is not None:
            yield from owned_assignments(f"buildsets/{bs.name}/{filename}", text, owned)
            yield from textrules.makefile_text(f"buildsets/{bs.name}/{filename}", text)


def _address_problem(doc: Document, where: Where, address: str) -> Iterator[Problem]:
    if ":" in address:
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            yield doc.problem(
                where,
                f"{'.'.join(map(str, where))}: {address!r} is not a valid IPv6 address",
                "write it as ipaddress would, e.g. 2001:db8::10",
            )


def _kernel_rules(repo: RepoFiles) -> Iterator[Problem]:
    for ident in sorted(repo.kernels):
        path = f"kernels/{ident}"
        if ident in STOCK_KERNCONFS:
            yield Problem(
                path,
                0,
                0,
                f"{ident} is a stock kernel config; this file would replace it",
                "give the custom config its own name and ident",
            )
            continue
        winner = kconf.effective_ident(ident, repo.kernels)
        if winner is None:
            yield Problem(
                path,
                1,
                1,
                f"no 'ident {ident}' line",
                f"add 'ident {ident}' after the include lines (uname -i must report {ident})",
            )
        elif winner.value != ident:
            if winner.file == ident:
                where = ""
            elif winner.line:
                where = f" (from kernels/{winner.file})"
            else:
                where = f" (from the included stock {winner.file})"
            line = winner.line if winner.file == ident else 1
            yield Problem(
                path,
                line,
                1,
                f"the kernel's ident is {winner.value!r}{where}, not {ident!r}",
                f"end the file with 'ident {ident}': "
                "the reconciler checks uname -i against the file name",
            )


def _source_url_rule(fleet: Document) -> Iterator[Problem]:
    """A git URL whose host part ssh would read as an option (``ssh://-oProxyCommand=...``)."""
    url = _text(_mapping(_mapping(fleet.data).get("source")).get("url"))
    if url is None:
        return
    part = textrules.git_url_host(url)
    if part is not None:
        yield fleet.problem(
            ("source", "url"),
            f"source.url: the host part {part!r} starts with '-', which git would hand "
            "to ssh where it reads as an option",
            "write the real host name of the git server",
        )


def _ports_tree_rule(fleet: Document) -> Iterator[Problem]:
    """The ports tree is its own NFS export: it cannot overlap /usr/src or /usr/obj."""
    tree = _text(_mapping(_mapping(fleet.data).get("ports")).get("tree"))
    if tree is None or _CONTROL_OR_NEWLINE.search(tree):
        return
    for shared in ("/usr/src", "/usr/obj"):
        if tree == shared or tree.startswith(shared + "/") or shared.startswith(tree + "/"):
            yield fleet.problem(
                ("ports", "tree"),
                f"ports.tree: {tree} overlaps {shared}, which the reconciler shares itself",
                "keep the ports tree apart, e.g. /usr/ports",
            )
            return


def check(repo: RepoFiles) -> list[Problem]:
    """Every semantic problem of the repo."""
    problems: list[Problem] = []
    for doc in [repo.fleet, *(bs.doc for bs in repo.buildsets)]:
        if doc is not None:
            problems.extend(control_characters(doc))
    # name -> (build set, document, where) of the first definition
    fleet_hosts: dict[str, tuple[str, Document, Where]] = {}
    addresses: dict[tuple[str, int], str] = {}
    model_hosts: list[tuple[Host, Document, Where]] = []
    for bs in repo.buildsets:
        if bs.doc is None:
            continue
        for name, spec in _mapping(_mapping(bs.doc.data).get("hosts")).items():
            where: Where = ("hosts", name)
            if name in fleet_hosts:
                other, other_doc, other_where = fleet_hosts[name]
                line = other_doc.key_at(other_where)[0]
                problems.append(
                    bs.doc.problem(
                        where,
                        f"host {name!r} is already in build set {other!r} "
                        f"({other_doc.path}:{line})",
                        "a host belongs to exactly one build set; remove one of them",
                        key=True,
                    )
                )
                continue
            fleet_hosts[name] = (bs.name, bs.doc, where)
            spec = _mapping(spec)
            address, port = _text(spec.get("address")), spec.get("port", 22)
            if address is None or not isinstance(port, int) or not 0 < port < 65536:
                continue  # the schema reported it
            problems.extend(_address_problem(bs.doc, (*where, "address"), address))
            if (address.lower(), port) in addresses:
                problems.append(
                    bs.doc.problem(
                        (*where, "address"),
                        f"hosts.{name}.address: {address}:{port} is also the address "
                        f"of host {addresses[address.lower(), port]!r}",
                        "every host needs its own address (or port)",
                    )
                )
            else:
                addresses[address.lower(), port] = name
            model_hosts.append((Host(name, bs.name, address, "", port=port), bs.doc, where))
    if repo.fleet is not None:
        src_host = _text(_mapping(repo.fleet.data).get("src_host"))
        every_set_read = all(bs.doc is not None for bs in repo.buildsets)
        if (
            src_host
            and HOST_NAME.match(src_host)
            and every_set_read
            and fleet_hosts
            and src_host not in fleet_hosts
        ):
            problems.append(
                repo.fleet.problem(
                    ("src_host",),
                    f"src_host {src_host!r} is not a host of any build set",
                    f"name one of: {', '.join(fleet_hosts)}",
                )
            )
    if repo.fleet is not None:
        problems.extend(_ports_tree_rule(repo.fleet))
        problems.extend(_source_url_rule(repo.fleet))
        problems.extend(portsfiles.fleet_ports_rules(repo.fleet))
        problems.extend(timespec.freeze_rules(repo.fleet))
    for bs in repo.buildsets:
        problems.extend(_buildset_rules(bs, fleet_hosts, repo))
        if bs.doc is not None:
            problems.extend(portsfiles.buildset_rules(bs.name, bs.doc, bs.ports, repo.fleet))
            problems.extend(timespec.window_rules(bs.doc))
            problems.extend(timespec.health_rules(bs.doc))
    problems.extend(_kernel_rules(repo))
    problems.extend(textrules.kernel_includes(repo.kernels))
    if repo.known_hosts is not None:
        pinned = PinIndex(repo.known_hosts)  # parsed once for every host
        for host, doc, where in model_hosts:
            if not pinned.pins(host):
                shown = " or ".join(host_strings(host.name, host.address, host.port))
                problems.append(
                    doc.problem(
                        where,
                        f"host {host.name!r} has no key in {KNOWN_HOSTS} (looked for {shown})",
                        f"add its key: ssh-keyscan -p {host.port} {host.address} >> {KNOWN_HOSTS}, "
                        "after checking the fingerprint on the host's console",
                        key=True,
                    )
                )
    return problems
