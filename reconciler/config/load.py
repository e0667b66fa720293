"""Load a config repo into the typed model, or report every problem it has.

``load_config(repo)`` reads the directory as it is on disk (a plain directory
or a git work tree, uncommitted edits included); ``load_config(repo, rev)``
reads the files of that commit from git's object store. Either way the steps
are the same: read each file (regular files only, at most 1 MiB, UTF-8), parse
the YAML with positions, check it against its JSON Schema, apply the rules,
and only when no problem was found build the frozen :class:`Config`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reconciler.config import portsfiles, rules, schema, timespec
from reconciler.config.model import (
    BuildSet,
    Config,
    Freeze,
    HealthCheck,
    Host,
    KernelConfig,
    Packages,
    PortOptions,
    PortsSettings,
    PortsTree,
    ReconcilerPolicy,
    RepoSigning,
    RolloutPolicy,
    Source,
    Window,
)
from reconciler.config.repofiles import Entry, Reader, reader_for
from reconciler.config.repofiles import resolve_commit as resolve_commit
from reconciler.config.yamldoc import MAX_FILE_BYTES, Document, decode, parse
from reconciler.errors import ConfigInvalid, Problem

__all__ = ["load_config", "resolve_commit"]

BUILDSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
KERNCONF_NAME = rules.KERNCONF_NAME
#: Entries read from buildsets/ or kernels/; bounds the work a hostile repo can cause.
MAX_ENTRIES = 256


class _Collector:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.problems: list[Problem] = []

    def text(self, path: str, *, required: bool, hint: str = "") -> str | None:
        """The UTF-8 text of ``path``; a problem (and None) when it cannot be used."""
        entry = self.reader.entry(path)
        if entry is None:
            if required:
                self.problems.append(Problem(path, 0, 0, "missing file", hint))
            return None
        if entry.kind != "file":
            what = {"symlink": "a symbolic link", "dir": "a directory"}.get(entry.kind, "special")
            self.problems.append(
                Problem(
                    path,
                    0,
                    0,
                    f"is {what}, not a regular file",
                    "commit the file itself; links could point outside the repo",
                )
            )
            return None
        if entry.size > MAX_FILE_BYTES:
            self.problems.append(
                Problem(
                    path,
                    0,
                    0,
                    f"file is {entry.size / (1 << 20):.1f} MiB; "
                    f"the limit is {MAX_FILE_BYTES >> 20} MiB",
                    "config files are small text files; is this the right file?",
                )
            )
            return None
        text, problems = decode(path, self.reader.read(path))
        self.problems.extend(problems)
        return text

    def bounded(self, path: str, entries: list[Entry]) -> list[Entry]:
        """At most MAX_ENTRIES entries of a directory; a problem when there are more."""
        if len(entries) > MAX_ENTRIES:
            self.problems.append(
                Problem(
                    path,
                    0,
                    0,
                    f"{len(entries)} entries; the limit is {MAX_ENTRIES}",
                    "a config repo describes a fleet, not a file archive",
                )
            )
        return entries[:MAX_ENTRIES]

    def document(self, path: str, schema_name: str, *, hint: str) -> Document | None:
        text = self.text(path, required=True, hint=hint)
        if text is None:
            return None
        doc, problems = parse(path, text)
        self.problems.extend(problems)
        if doc is None:
            return None
        self.problems.extend(schema.check(doc, schema_name))
        return doc


def _read(reader: Reader) -> tuple[rules.RepoFiles, list[Problem]]:
    top = [e for e in reader.listdir("") if not e.name.startswith(".")]
    if not top:
        return (
            rules.RepoFiles(None),
            [
                Problem(
                    "fleet.yaml",
                    0,
                    0,
                    "the config repo is empty (no fleet.yaml, buildsets/, known_hosts)",
                    "start from a copy of example-repo/ and see its README.md",
                )
            ],
        )
    collect = _Collector(reader)
    fleet = collect.document(
        "fleet.yaml",
        "fleet",
        hint="every config repo has a fleet.yaml; see example-repo/fleet.yaml",
    )
    files = rules.RepoFiles(fleet)
    entry = reader.entry("buildsets")
    sets = reader.listdir("buildsets") if entry is not None and entry.kind == "dir" else []
    sets = collect.bounded("buildsets", sets)
    for item in sets:
        path = f"buildsets/{item.name}"
        if item.kind != "dir":
            collect.problems.append(
                Problem(
                    path, 0, 0, "not a directory", "each build set is a directory buildsets/<name>/"
                )
            )
            continue
        if not BUILDSET_NAME.match(item.name):
            collect.problems.append(
                Problem(
                    path,
                    0,
                    0,
                    f"{item.name!r} is not a valid build set name",
                    "use lower-case letters, digits, '_' and '-'",
                )
            )
            continue
        ports_dir, ports_problems = portsfiles.read(
            reader, path, lambda p: collect.text(p, required=True)
        )
        collect.problems.extend(ports_problems)
        files.buildsets.append(
            rules.BuildsetFiles(
                item.name,
                collect.document(
                    f"{path}/buildset.yaml",
                    "buildset",
                    hint="see example-repo/buildsets/lab/buildset.yaml",
                ),
                collect.text(
                    f"{path}/make.conf",
                    required=True,
                    hint="create it, empty if the set needs no make.conf settings",
                ),
                collect.text(
                    f"{path}/src.conf",
                    required=True,
                    hint="create it, empty if the set needs no src.conf settings",
                ),
                ports_dir,
            )
        )
    if not files.buildsets:
        collect.problems.append(
            Problem(
                "buildsets",
                0,
                0,
                "no build sets",
                "add buildsets/<name>/buildset.yaml, make.conf and src.conf",
            )
        )
    kernels_entry = reader.entry("kernels")
    listed = reader.listdir("kernels") if kernels_entry and kernels_entry.kind == "dir" else []
    # Names past the limit still count as present, so the limit is the only complaint.
    files.kernel_files.update(item.name for item in listed if KERNCONF_NAME.match(item.name))
    for item in collect.bounded("kernels", listed):
        path = f"kernels/{item.name}"
        if not KERNCONF_NAME.match(item.name):
            collect.problems.append(
                Problem(
                    path,
                    0,
                    0,
                    f"{item.name!r} is not a valid kernel config name",
                    "name the file after its ident: letters, digits, '_', '.' and '-'",
                )
            )
            continue
        files.kernel_files.add(item.name)
        text = collect.text(path, required=True)
        if text is not None:
            files.kernels[item.name] = text
    files.known_hosts = collect.text(
        "known_hosts",
        required=True,
        hint="pin every host's SSH key: ssh-keyscan ADDRESS >> known_hosts "
        "(check the fingerprints)",
    )
    if files.known_hosts is not None:
        from reconciler.config.knownhosts import parse as parse_known_hosts

        collect.problems.extend(parse_known_hosts(files.known_hosts)[1])
    if reader.entry("allowed_signers") is not None:
        # Who may sign is the reconciler's local setting: a pull request that could
        # edit this file could widen it. Refused rather than silently ignored.
        collect.problems.append(
            Problem(
                "allowed_signers",
                0,
                0,
                "the config repo's allowed_signers is not read: the signers the daemon "
                "trusts come from its local settings only",
                "remove the file; set allowed_signers = PATH in the reconciler's settings "
                "(docs/service.md, signed commits)",
            )
        )
    return files, collect.problems


def _rollout(data: dict[str, Any]) -> RolloutPolicy:
    default = RolloutPolicy()
    return RolloutPolicy(
        install=data.get("install", default.install),
        batch=tuple(batch) if isinstance(batch := data.get("batch", 1), list) else (batch,),
        max_failures=data.get("max_failures", default.max_failures),
        soak=data.get("soak", default.soak),
        reboot_timeout=data.get("reboot_timeout", default.reboot_timeout),
        health_checks=tuple(_health_check(c) for c in data.get("health_checks", ())),
        drift=data.get("drift", default.drift),
        keep_builds=data.get("keep_builds", default.keep_builds),
        allow_downgrade=data.get("allow_downgrade", default.allow_downgrade),
        windows=tuple(_window(w) for w in data.get("windows", ())),
        confirm_timeout=data.get("confirm_timeout", default.confirm_timeout),
        smoke_checks=tuple(data.get("smoke_checks", ())),
    )


def _health_check(spec: str | dict[str, Any]) -> HealthCheck:
    if isinstance(spec, str):
        return HealthCheck(command=spec)
    default = HealthCheck()
    return HealthCheck(
        command=spec.get("command", ""),
        url=(spec.get("http") or {}).get("url", ""),
        interval=spec.get("interval", default.interval),
        timeout=spec.get("timeout", default.timeout),
        retries=spec.get("retries", default.retries),
    )


def _window(spec: dict[str, Any]) -> Window:
    seconds = timespec.duration_seconds(spec["duration"])
    assert seconds is not None  # the rules checked it
    return Window(
        start=spec["start"],
        duration=seconds,
        timezone=spec["timezone"],
        days=tuple(timespec.day(d) or d for d in spec.get("days", ())),
        rrule=spec.get("rrule"),
    )


def _freeze(spec: dict[str, Any]) -> Freeze:
    return Freeze(
        start=spec["from"], until=spec["until"], timezone=spec["timezone"], reason=spec["reason"]
    )


def _packages(data: dict[str, Any] | None, ports: portsfiles.PortsDir) -> Packages | None:
    if data is None:
        return None
    default = Packages(origins=())
    signing = data.get("signing")
    return Packages(
        origins=tuple(data["origins"]),
        host_extras=tuple((host, tuple(extra)) for host, extra in data.get("hosts", {}).items()),
        method=data.get("method", default.method),
        make_conf=ports.make_conf or "",
        options=tuple(PortOptions(name, text) for name, text in sorted(ports.options.items())),
        signing=RepoSigning(**signing) if signing is not None else None,
        freebsd_repository=data.get("freebsd_repository", default.freebsd_repository),
        keep=data.get("keep", default.keep),
    )


def _buildset(files: rules.BuildsetFiles) -> BuildSet:
    assert files.doc is not None and files.make_conf is not None and files.src_conf is not None
    data: dict[str, Any] = files.doc.data
    hosts = tuple(
        Host(
            name=name,
            buildset=files.name,
            address=spec["address"],
            kernconf=spec["kernconf"],
            stage=spec.get("stage", "production"),
            port=spec.get("port", 22),
            user=spec.get("user", "root"),
            group=spec.get("group"),
        )
        for name, spec in data["hosts"].items()
    )
    ports = data.get("ports")
    return BuildSet(
        name=files.name,
        arch=data["arch"],
        build_host=data["build_host"],
        jobs=data["jobs"],
        hosts=hosts,
        make_conf=files.make_conf,
        src_conf=files.src_conf,
        rollout=_rollout(data.get("rollout") or {}),
        ports=PortsSettings(**ports) if ports is not None else None,
        packages=_packages(data.get("packages"), files.ports),
    )


def load_config(repo: str | Path, rev: str | None = None) -> Config:
    """The config repo ``repo`` (at commit ``rev``, or as on disk) as a checked :class:`Config`.

    Raises ConfigInvalid with every problem found, RepoError when the repo or
    the revision cannot be read.
    """
    reader, commit = reader_for(repo, rev)
    files, problems = _read(reader)
    problems.extend(rules.check(files))
    if problems:
        raise ConfigInvalid(_dedupe(problems))
    assert files.fleet is not None and files.known_hosts is not None
    fleet: dict[str, Any] = files.fleet.data
    ports = fleet.get("ports")
    return Config(
        source=Source(**fleet["source"]),
        src_host=fleet["src_host"],
        buildsets=tuple(_buildset(bs) for bs in files.buildsets),
        kernels=tuple(KernelConfig(ident, text) for ident, text in sorted(files.kernels.items())),
        known_hosts=files.known_hosts,
        ports=PortsTree(**ports) if ports is not None else None,
        policy=ReconcilerPolicy(**(fleet.get("reconciler") or {})),
        reboot_groups={
            name: int(spec["max_down"]) for name, spec in (fleet.get("reboot_groups") or {}).items()
        },
        freezes=tuple(_freeze(f) for f in fleet.get("freeze", ())),
        commit=commit,
        origin=str(repo),
    )


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """Drop a control-character complaint where the schema already flagged the same value."""

    def from_rules(problem: Problem) -> bool:
        return "contains a control character" in problem.message

    located = {(p.path, p.line, p.column) for p in problems if not from_rules(p)}
    kept: list[Problem] = []
    for problem in problems:
        if from_rules(problem) and (problem.path, problem.line, problem.column) in located:
            continue
        if problem not in kept:
            kept.append(problem)
    return kept
