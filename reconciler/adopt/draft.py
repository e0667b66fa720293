"""From host readings to a fleet description: build sets, kernels, src host (pure).

Rules, each choice recorded with its reason so the rendered files can say it:

- **Build sets** group hosts that run the same userland binaries, i.e. share
  ``src.conf``, ``make.conf`` and the architecture (``uname -m``/``-p``); a set
  is named after the stem most of its hosts share (web1, web2: ``web``), else
  after its build host.
  make.conf is compared without the lines the reconciler owns (KERNCONF,
  DESTDIR, MAKEOBJDIRPREFIX: the ones ``validate`` refuses, continuation lines
  with them) and without a managed header; a missing file counts as empty.
- **Build host**: ``--build-host`` when it names a host of the set; else a
  host with a git checkout of its own in /usr/src (it has been building),
  the lexically smallest if several; else the lexically smallest host.
- **Test host**: ``--test-host`` hosts of the set; else the lexically smallest
  host that is not the build host (the build host itself in a one-host set).
- **Install method**: ``boot-environment`` when every host of the set lists
  boot environments, else ``in-place`` (the handbook's sequence).
- **Kernels**: ``kernels/<IDENT>`` for every running ident that is not a stock
  config, from ``--kernel IDENT=FILE``, else ``kern.conftxt`` (every host
  running it must embed the same text), else the config file of that name in
  a host's /usr/src, else a problem.
- **Src host**: ``--src-host``; else a build host with a git checkout in
  /usr/src; else any host with one; else the first set's build host.
- **Revision**: the 12-hex commit ``uname -v`` names (``newvers.sh``), the same
  on every host that names one; ``--revision`` decides otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler import remote
from reconciler.adopt.reading import HostReading
from reconciler.config import render
from reconciler.config.model import STOCK_KERNCONFS, InstallMethod
from reconciler.config.rules import OWNED_VARS, owned_assignments

ARCHES = ("amd64", "arm64", "i386", "arm", "powerpc", "riscv")  # schema/buildset.schema.json
SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")


@dataclass(frozen=True)
class Choices:
    """What the command line decided instead of the defaults."""

    build_hosts: tuple[str, ...] = ()
    test_hosts: tuple[str, ...] = ()
    src_host: str | None = None
    revision: str | None = None  # full 40 hex
    kernels: Mapping[str, str] = field(default_factory=dict)  # IDENT -> text (--kernel)


@dataclass(frozen=True)
class SetDraft:
    name: str
    arch: str
    processor: str | None
    hosts: tuple[HostReading, ...]  # sorted by name
    build_host: str
    build_why: str
    test_hosts: tuple[str, ...]
    test_why: str
    make_conf: str
    src_conf: str
    install: InstallMethod
    install_why: str
    jobs: int
    jobs_why: str


@dataclass(frozen=True)
class KernelDraft:
    ident: str
    text: str
    why: str


@dataclass(frozen=True)
class Draft:
    sets: tuple[SetDraft, ...]
    kernels: tuple[KernelDraft, ...]
    src_host: str
    src_why: str
    hash12: str | None  # what uname -v names (None: no host names one)
    revision_why: str
    warnings: tuple[str, ...] = ()

    def host(self, name: str) -> HostReading:
        return next(h for s in self.sets for h in s.hosts if h.name == name)


def config_body(text: str | None) -> str:
    """make.conf/src.conf as a build set would hold it: no owned lines, no managed header."""
    if not text:
        return ""
    lines = text.splitlines()
    while lines and lines[0].startswith((render.MANAGED_HEADER_PREFIX, "# Source: ")):
        lines.pop(0)
    body = "\n".join(lines) + "\n"
    owned = {p.line for p in owned_assignments("f", body, OWNED_VARS)}
    kept, dropping = [], False
    for number, line in enumerate(body.splitlines(), start=1):
        if number in owned or dropping:
            dropping = line.rstrip().endswith("\\")  # the assignment goes on
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n" if kept else ""


def _stem(name: str) -> str:
    return name.rstrip("0123456789").rstrip("-")


def _set_name(hosts: Sequence[HostReading], build_host: str, taken: set[str]) -> str:
    """The stem most of the hosts share (web1, web2, builder: web), else the build host's name."""
    stems = [_stem(h.name) for h in hosts]
    common = max(sorted(set(stems)), key=stems.count)
    base = common if common and stems.count(common) * 2 > len(stems) else build_host
    name, n = base, 2
    while name in taken or not SET_NAME.match(name):
        name, n = f"{base}-{n}", n + 1
    return name


def _build_host(hosts: Sequence[HostReading], wanted: set[str]) -> tuple[str, str]:
    named = [h.name for h in hosts if h.name in wanted]
    if named:
        return named[0], "chosen with --build-host"
    building = [h.name for h in hosts if h.local_source]
    if building:
        return building[0], "has a git checkout of its own in /usr/src (--build-host to choose)"
    return hosts[0].name, "the lexically smallest host of the set (--build-host to choose)"


def _test_hosts(
    hosts: Sequence[HostReading], build_host: str, wanted: set[str]
) -> tuple[tuple[str, ...], str]:
    named = tuple(h.name for h in hosts if h.name in wanted)
    if named:
        return named, "chosen with --test-host"
    others = [h.name for h in hosts if h.name != build_host]
    if others:
        return (others[0],), "the lexically smallest host but the build host (--test-host)"
    return (build_host,), "the only host of the set"


def _group_key(reading: HostReading) -> tuple[str, str, str, str]:
    return (
        reading.machine or "",
        reading.processor or "",
        config_body(reading.src_conf),
        config_body(reading.make_conf),
    )


def _host_problems(readings: Iterable[HostReading]) -> list[str]:
    problems = []
    for r in readings:
        if not r.ident:
            problems.append(f"{r.name}: uname -i printed no kernel ident: is this FreeBSD?")
        if r.machine not in ARCHES:
            problems.append(
                f"{r.name}: uname -m is {r.machine!r}, not an architecture a build set can "
                f"name ({', '.join(ARCHES)})"
            )
    return problems


def _sets(readings: Sequence[HostReading], choices: Choices) -> tuple[list[SetDraft], list[str]]:
    groups: dict[tuple[str, str, str, str], list[HostReading]] = {}
    for reading in sorted(readings, key=lambda r: r.name):
        groups.setdefault(_group_key(reading), []).append(reading)
    problems: list[str] = []
    wanted_build, wanted_test = set(choices.build_hosts), set(choices.test_hosts)
    sets: list[SetDraft] = []
    taken: set[str] = set()
    for (machine, processor, src_conf, make_conf), hosts in sorted(
        groups.items(), key=lambda item: item[1][0].name
    ):
        named = [h.name for h in hosts if h.name in wanted_build]
        if len(named) > 1:
            problems.append(
                f"--build-host names {' and '.join(named)}, which share src.conf, make.conf "
                "and arch and so form one build set: name one"
            )
        build, build_why = _build_host(hosts, wanted_build)
        tests, test_why = _test_hosts(hosts, build, wanted_test)
        install: InstallMethod
        if all(h.boot_environments for h in hosts):
            install, install_why = "boot-environment", "every host lists boot environments"
        else:
            lacking = ", ".join(h.name for h in hosts if not h.boot_environments)
            install = "in-place"
            install_why = f"no boot environments on {lacking} (bectl list fails)"
        builder = next(h for h in hosts if h.name == build)
        jobs = max(1, min(builder.ncpu or 1, 1024))
        name = _set_name(hosts, build, taken)
        taken.add(name)
        sets.append(
            SetDraft(
                name=name,
                arch=machine,
                processor=processor or None,
                hosts=tuple(hosts),
                build_host=build,
                build_why=build_why,
                test_hosts=tests,
                test_why=test_why,
                make_conf=make_conf,
                src_conf=src_conf,
                install=install,
                install_why=install_why,
                jobs=jobs,
                jobs_why=f"hw.ncpu of {build}" if builder.ncpu else "hw.ncpu unknown",
            )
        )
    return sets, problems


def _kernels(
    readings: Sequence[HostReading], given: Mapping[str, str]
) -> tuple[list[KernelDraft], list[str], list[str]]:
    by_ident: dict[str, list[HostReading]] = {}
    for r in sorted(readings, key=lambda r: r.name):
        if r.ident and r.ident not in STOCK_KERNCONFS:
            by_ident.setdefault(r.ident, []).append(r)
    kernels, problems, warnings = [], [], []
    for ident, hosts in sorted(by_ident.items()):
        names = ", ".join(h.name for h in hosts)
        if ident in given:
            kernels.append(
                KernelDraft(ident, given[ident], f"given with --kernel (runs on {names})")
            )
            continue
        embedded = {h.conftxt for h in hosts if h.conftxt}
        if len(embedded) > 1:
            problems.append(
                f"kernel {ident} differs between its hosts ({names}: kern.conftxt not the "
                f"same): rebuild one, or give the one to keep with --kernel {ident}=FILE"
            )
            continue
        if embedded:
            carriers = ", ".join(h.name for h in hosts if h.conftxt)
            why = (
                f"kern.conftxt of {carriers}: the configuration the running kernel was built "
                "from, as config(8) parsed it (includes resolved)"
            )
            kernels.append(KernelDraft(ident, embedded.pop(), why))
            continue
        files = [h for h in sorted(hosts, key=lambda h: not h.local_source) if h.own_conf]
        if files:
            where = f"{files[0].name}:/usr/src/sys/{files[0].machine}/conf/{ident}"
            kernels.append(KernelDraft(ident, files[0].own_conf or "", f"copied from {where}"))
            warnings.append(
                f"kernels/{ident}: copied from {where}; the running kernel embeds no "
                "config (built without options INCLUDE_CONFIG_FILE), so check it is what runs"
            )
            continue
        problems.append(
            f"kernel {ident} (on {names}) embeds no configuration (built without options "
            f"INCLUDE_CONFIG_FILE) and no host has /usr/src/sys/{hosts[0].machine}/conf/{ident}: "
            f"give it with --kernel {ident}=FILE"
        )
    return kernels, problems, warnings


def _src_host(sets: Sequence[SetDraft], wanted: str | None) -> tuple[str, str]:
    if wanted:
        return wanted, "chosen with --src-host"
    for s in sets:
        builder = next(h for h in s.hosts if h.name == s.build_host)
        if builder.local_source:
            return s.build_host, f"build host of {s.name} with a git checkout in /usr/src"
    for s in sets:
        for h in s.hosts:
            if h.local_source:
                return h.name, "has a git checkout in /usr/src (--src-host to choose)"
    return sets[0].build_host, (
        f"build host of {sets[0].name}; no host has a git checkout in /usr/src yet, so the "
        "first rollout clones one there (--src-host to choose)"
    )


def _revision(
    readings: Sequence[HostReading], choices: Choices
) -> tuple[str | None, str, list[str]]:
    running: dict[str, list[str]] = {}
    dirty = []
    for r in sorted(readings, key=lambda r: r.name):
        src = r.versions.source
        if src is not None:
            running.setdefault(src.revision12, []).append(r.name)
            if src.dirty:
                dirty.append(r.name)
    note = f"; built from a tree with local changes on {', '.join(dirty)}" if dirty else ""
    if choices.revision:
        shown = ", ".join(f"{k} ({', '.join(v)})" for k, v in running.items()) or "none named"
        return choices.revision[:12], f"chosen with --revision; running: {shown}{note}", []
    if not running:
        return (
            None,
            "",
            [
                "no host's uname -v names a git revision (newvers.sh adds it only when git was "
                "in /usr/bin or /usr/local/bin at build time): give it with --revision FULL"
            ],
        )
    if len(running) > 1:
        shown = "; ".join(f"{k} on {', '.join(v)}" for k, v in sorted(running.items()))
        return (
            None,
            "",
            [
                f"the hosts run kernels built from different revisions ({shown}): "
                "choose the one to converge on with --revision FULL"
            ],
        )
    ((hash12, names),) = running.items()
    silent = [r.name for r in readings if r.versions.source is None]
    also = f" ({', '.join(silent)} name none)" if silent else ""
    return hash12, f"uname -v of {', '.join(names)}{also}{note}", []


def make_draft(readings: Sequence[HostReading], choices: Choices) -> tuple[Draft | None, list[str]]:
    """The fleet the readings describe, or None and every problem that stops it."""
    problems = _host_problems(readings)
    names = {r.name for r in readings}
    for flag, wanted in (
        ("--build-host", choices.build_hosts),
        ("--test-host", choices.test_hosts),
        ("--src-host", (choices.src_host,) if choices.src_host else ()),
    ):
        problems += [f"{flag} {n}: no such --host" for n in wanted if n not in names]
    problems += [
        f"--kernel {ident}: no host runs a kernel with that ident"
        for ident in choices.kernels
        if ident not in {r.ident for r in readings}
    ]
    if problems:
        return None, problems
    sets, set_problems = _sets(readings, choices)
    kernels, kernel_problems, warnings = _kernels(readings, choices.kernels)
    hash12, revision_why, revision_problems = _revision(readings, choices)
    problems = set_problems + kernel_problems + revision_problems
    if problems:
        return None, problems
    src, src_why = _src_host(sets, choices.src_host)
    managed = [r.name for r in readings if r.managed]
    if managed:
        warnings.append(
            f"{', '.join(managed)}: {remote.MARKER} is there: a reconciler "
            "installed these hosts before"
        )
    return (
        Draft(
            sets=tuple(sets),
            kernels=tuple(kernels),
            src_host=src,
            src_why=src_why,
            hash12=hash12,
            revision_why=revision_why,
            warnings=tuple(warnings),
        ),
        [],
    )
