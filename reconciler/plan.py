"""Desired state + facts -> a Plan (pure: no I/O, cheap enough to redo at every step).

A plan has, per build set (with its build id), the four rollout stages, and
in each stage, per host, the ordered steps that would bring the host to the
desired state, each with its reason in words. A host in sync has no steps.

Stages and what they hold:

- ``source``: the src host's ``/usr/src`` at the desired revision
  (``checkout-source``), the custom kernel configs copied into
  ``sys/<arch>/conf`` (``copy-kernel-configs``), NFS exports on the src and
  build hosts (``export-nfs``) and the NFS fstab lines and mounts on the
  clients (``mount-nfs``).
- ``build``: on the build host, make.conf/src.conf (``write-config``: the
  build reads them) and the build unless ``/usr/obj`` holds this build id
  (``build``; ``await-build`` while one runs).
- ``test`` / ``production``: per host ``write-config`` (no reboot by itself),
  then ``install`` (implies a reboot) or ``reboot`` (installed, not booted),
  or ``activate`` (the new boot environment runs, but only from a one-shot
  activation: make it permanent).

A host that could not be observed gets one ``unreachable`` step wherever it
appears, so the rest of the fleet is still planned.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.config import render
from reconciler.config.buildid import build_id
from reconciler.config.model import STOCK_KERNCONFS, BuildSet, Config, Host
from reconciler.facts.host import HostFacts
from reconciler.facts.mounts import Mount, parse_exports_text, parse_fstab

FORMAT = 1
STAGES = ("source", "build", "test", "production")
STEP_KINDS = (
    "unreachable",
    "checkout-source",
    "copy-kernel-configs",
    "export-nfs",
    "mount-nfs",
    "write-config",
    "build",
    "await-build",
    "install",
    "reboot",
    "activate",
)


@dataclass(frozen=True)
class Step:
    kind: str
    reason: str
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "detail": dict(self.detail)}


@dataclass(frozen=True)
class HostPlan:
    host: str
    reachable: bool
    steps: tuple[Step, ...] = ()

    @property
    def in_sync(self) -> bool:
        return not self.steps

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "reachable": self.reachable,
            "in_sync": self.in_sync,
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class StagePlan:
    name: str
    hosts: tuple[HostPlan, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for h in self.hosts for s in h.steps)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "hosts": [h.to_json() for h in self.hosts]}


def _count(steps: tuple[Step, ...], *kinds: str) -> int:
    return sum(1 for s in steps if s.kind in kinds)


@dataclass(frozen=True)
class BuildSetPlan:
    name: str
    build: str  # build id, 64 hex
    arch: str
    install_method: str
    stages: tuple[StagePlan, ...]
    warnings: tuple[str, ...] = ()

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for stage in self.stages for s in stage.steps)

    @property
    def builds(self) -> int:
        return _count(self.steps, "build")

    @property
    def reboots(self) -> int:
        return _count(self.steps, "install", "reboot")

    @property
    def installs(self) -> int:
        return _count(self.steps, "install")

    @property
    def unreachable(self) -> tuple[str, ...]:
        names = [h.host for st in self.stages for h in st.hosts if not h.reachable]
        return tuple(dict.fromkeys(names))

    def counts(self) -> dict[str, int]:
        return {
            "steps": len(self.steps),
            "builds": self.builds,
            "installs": self.installs,
            "reboots": self.reboots,
            "unreachable": len(self.unreachable),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "build": self.build,
            "arch": self.arch,
            "install": self.install_method,
            "counts": self.counts(),
            "warnings": list(self.warnings),
            "stages": [s.to_json() for s in self.stages],
        }


@dataclass(frozen=True)
class Plan:
    generation: str | None  # config commit, None for a plain directory
    branch: str
    revision: str
    buildsets: tuple[BuildSetPlan, ...]

    def buildset(self, name: str) -> BuildSetPlan:
        return next(b for b in self.buildsets if b.name == name)

    @property
    def in_sync(self) -> bool:
        return all(not b.steps for b in self.buildsets)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for b in self.buildsets for w in b.warnings))

    def counts(self) -> dict[str, int]:
        totals = {"steps": 0, "builds": 0, "installs": 0, "reboots": 0, "unreachable": 0}
        for bs in self.buildsets:
            for key, value in bs.counts().items():
                totals[key] += value
        # The src host appears in every set's source stage: count hosts once.
        totals["unreachable"] = len({name for bs in self.buildsets for name in bs.unreachable})
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generation": self.generation or "worktree",
            "source": {"branch": self.branch, "revision": self.revision},
            "in_sync": self.in_sync,
            "counts": self.counts(),
            "warnings": list(self.warnings),
            "buildsets": [b.to_json() for b in self.buildsets],
        }


# -- comparing ----------------------------------------------------------------


def _body(text: str) -> list[str]:
    """A rendered file without its managed header (which names the config commit)."""
    lines = text.splitlines()
    while lines and (
        lines[0].startswith(render.MANAGED_HEADER_PREFIX) or lines[0].startswith("# Source: ")
    ):
        lines.pop(0)
    return lines


def _differs(name: str, actual: str | None, desired: str) -> str | None:
    if actual is None:
        return f"{name} missing"
    old, new = _body(actual), _body(desired)
    if old == new:
        return None
    changed = sum(
        1
        for line in difflib.unified_diff(old, new, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )
    return f"{name} differs: {changed} line{'s' if changed != 1 else ''}"


def _short(value: str | None) -> str:
    return value[:12] if value else "unknown"


def _unreachable(name: str, facts: HostFacts | None) -> HostPlan | None:
    if facts is None:
        return HostPlan(name, False, (Step("unreachable", "not observed"),))
    if not facts.reachable:
        return HostPlan(name, False, (Step("unreachable", facts.error or "unreachable"),))
    return None


def _write_config(config: Config, bs: BuildSet, host: Host, facts: HostFacts) -> list[Step]:
    etc = facts.etc
    reasons = [
        _differs("make.conf", etc.make_conf if etc else None, render.make_conf(config, bs, host)),
        _differs("src.conf", etc.src_conf if etc else None, render.src_conf(config, bs)),
    ]
    found = [r for r in reasons if r]
    if not found:
        return []
    return [Step("write-config", "; ".join(found), {"files": "/etc/make.conf /etc/src.conf"})]


def _install(config: Config, bs: BuildSet, host: Host, facts: HostFacts, build: str) -> list[Step]:
    versions = facts.versions
    running = versions.revision12 if versions else None
    ident = versions.ident if versions else None
    installed = facts.marker.build if facts.marker else None
    pending = facts.boot is not None and facts.boot.reboot_pending
    want = config.source.short
    detail = {"build": build, "revision": config.source.revision, "kernconf": host.kernconf}
    be_name = f"rc-{build[:12]}"
    envs = facts.boot_envs
    if installed == build and running == want and ident == host.kernconf and not pending:
        booted = envs.booted if envs else None
        upcoming = envs.next_boot if envs else None
        if booted is not None and upcoming is not None and upcoming.name != booted.name:
            # Booted through a one-shot activation that was never made permanent:
            # the next reboot would return to the old environment.
            return [
                Step(
                    "activate",
                    f"runs {booted.name} from a one-shot activation; next boot would "
                    f"return to {upcoming.name}",
                    {"be": booted.name, **detail},
                )
            ]
        return []
    staged = envs is not None and envs.next_boot is not None and envs.next_boot.name == be_name
    if staged and not (envs and envs.booted and envs.booted.name == be_name):
        return [
            Step("reboot", f"build {build[:12]} installed in {be_name}, not booted yet", detail)
        ]
    if installed == build and (pending or running != want):
        return [
            Step(
                "reboot",
                f"build {build[:12]} installed, running kernel built from {_short(running)}",
                detail,
            )
        ]
    if running != want:
        reason = f"running kernel built from {_short(running)}, desired {want}"
    elif ident != host.kernconf:
        reason = f"running kernel {ident or 'unknown'}, desired {host.kernconf}"
    elif installed is None:
        reason = f"no reconciler build installed, desired {build[:12]}"
    else:
        reason = f"installed build {installed[:12]}, desired {build[:12]}"
    return [Step("install", reason, detail)]


def _source_steps(config: Config, bs: BuildSet, facts: HostFacts) -> list[Step]:
    steps = []
    want = config.source.revision
    tree = facts.source
    if tree is None or not tree.present:
        steps.append(
            Step(
                "checkout-source",
                f"no git repository in /usr/src, desired {want[:12]}",
                {"revision": want},
            )
        )
    elif tree.revision != want:
        steps.append(
            Step(
                "checkout-source",
                f"/usr/src at {_short(tree.revision)}, desired {want[:12]}",
                {"revision": want},
            )
        )
    present = facts.kernel_configs_for(bs.arch)
    stale = []
    for ident in bs.kernconfs:
        kernel = config.kernel(ident)
        if kernel is None:
            continue
        have = present.contents.get(ident) if present else None
        if have is None:
            stale.append(f"{ident} missing")
        elif have != kernel.text:
            stale.append(f"{ident} differs")
    if stale:
        steps.append(
            Step(
                "copy-kernel-configs",
                f"sys/{bs.arch}/conf: {', '.join(stale)}",
                {"arch": bs.arch, "kernels": " ".join(s.split()[0] for s in stale)},
            )
        )
    return steps


def _export_steps(config: Config, bs: BuildSet, host: Host, facts: HostFacts) -> list[Step]:
    # Only the exports this set needs: /usr/src (and ports) from the src host,
    # /usr/obj from this set's build host; another set's lines are its own.
    paths = set()
    if host.name == config.src_host:
        paths.add(render.SRC)
        if config.ports is not None:
            paths.add(config.ports.tree)
    if host.name == bs.build_host:
        paths.add(render.OBJ)
    wanted = [
        line
        for line in parse_exports_text(render.exports(config).get(host.name, ""))
        if line.split()[0] in paths
    ]
    have = set(facts.exports or ())
    missing = [line for line in wanted if line not in have]
    if not missing:
        return []
    named = ", ".join(dict.fromkeys(line.split()[0] for line in missing))
    return [Step("export-nfs", f"/etc/exports lacks {named}", {"paths": named})]


def _mounted(mount: Mount, facts: HostFacts) -> bool:
    found = facts.mounts.at(mount.mountpoint) if facts.mounts else None
    return found is not None and found.fstype == "nfs" and found.device == mount.device


def _mount_steps(config: Config, host: Host, facts: HostFacts) -> list[Step]:
    wanted = parse_fstab(render.fstab(config, host))
    fstab = facts.mounts.fstab if facts.mounts else ()
    problems = []
    for mount in wanted:
        if mount not in fstab:
            problems.append(f"{mount.mountpoint} not in /etc/fstab")
        elif facts.mounts is not None and facts.mounts.mounted_known and not _mounted(mount, facts):
            problems.append(f"{mount.mountpoint} not mounted")
    if not problems:
        return []
    return [
        Step(
            "mount-nfs",
            "; ".join(problems),
            {"mountpoints": " ".join(m.mountpoint for m in wanted)},
        )
    ]


def foreign_changes(config: Config, changed: tuple[str, ...]) -> list[str]:
    """``git status --porcelain`` lines other than the kernel configs the reconciler copies."""
    managed = {
        f"sys/{bs.arch}/conf/{ident}"
        for bs in config.buildsets
        for ident in bs.kernconfs
        if config.kernel(ident) is not None
    }
    return [line for line in changed if not (line.startswith("?? ") and line[3:] in managed)]


def _warnings(
    config: Config, bs: BuildSet, facts: Mapping[str, HostFacts], build: str
) -> list[str]:
    found = []
    builder = facts.get(bs.build_host)
    if builder is not None and builder.reachable:
        if bs.rollout.install == "boot-environment" and builder.obj_own_filesystem is False:
            found.append(
                f"{bs.build_host}: /usr/obj is not its own file system; with boot-environment "
                "installs it lives inside the boot environment and a BE switch loses the "
                "builds (give /usr/obj its own dataset, e.g. zfs create -o mountpoint=/usr/obj)"
            )
        obj = builder.objtree.builds.get(build) if builder.objtree else None
        if obj is not None and obj.state == "failed":
            found.append(
                f"{bs.build_host}: build {build[:12]} failed earlier (exit {obj.exit_code}); "
                f"see /var/log/reconciler/build-{build}.log"
            )
    if bs.rollout.install == "boot-environment":
        for host in bs.hosts:
            hf = facts.get(host.name)
            if hf is not None and hf.reachable and hf.boot_envs and not hf.boot_envs.available:
                found.append(
                    f"{host.name}: no boot environments (bectl list failed) but the set "
                    "installs into boot environments"
                )
    src = facts.get(config.src_host)
    changed = foreign_changes(config, src.source.changed) if src and src.source else []
    if changed:
        # A checkout does not clean a tree, so this is for a person to look at.
        shown = ", ".join(line[3:] for line in changed[:3]) + (", ..." if len(changed) > 3 else "")
        found.append(
            f"{config.src_host}: /usr/src has {len(changed)} local change(s) ({shown}); "
            f"builds from it are not exactly revision {config.source.short}"
        )
    if (
        src is not None
        and src.reachable
        and src.source
        and src.source.revision == config.source.revision
    ):
        listing = src.kernel_configs_for(bs.arch)
        for ident in bs.kernconfs:
            if ident in STOCK_KERNCONFS and listing is not None and ident not in listing.present:
                found.append(
                    f"{config.src_host}: stock kernel config {ident} not in sys/{bs.arch}/conf"
                )
    return found


def _host_plan(name: str, facts: HostFacts | None, steps_for: Any) -> HostPlan:
    down = _unreachable(name, facts)
    if down is not None:
        return down
    assert facts is not None
    return HostPlan(name, True, tuple(steps_for(facts)))


def plan_buildset(config: Config, bs: BuildSet, facts: Mapping[str, HostFacts]) -> BuildSetPlan:
    build = build_id(config, bs)
    src = config.src

    def source_steps(host: Host) -> Any:
        def steps(hf: HostFacts) -> list[Step]:
            found = _source_steps(config, bs, hf) if host.name == src.name else []
            return found + _export_steps(config, bs, host, hf) + _mount_steps(config, host, hf)

        return steps

    source_hosts = [src] + [h for h in bs.hosts if h.name != src.name]
    source_stage = StagePlan(
        "source",
        tuple(_host_plan(h.name, facts.get(h.name), source_steps(h)) for h in source_hosts),
    )

    builder = bs.build

    def build_steps(hf: HostFacts) -> list[Step]:
        found = _write_config(config, bs, builder, hf)
        state = hf.objtree.state(build) if hf.objtree else "absent"
        detail = {"build": build, "kernconfs": " ".join(bs.kernconfs), "jobs": str(bs.jobs)}
        if state == "running":
            found.append(Step("await-build", f"build {build[:12]} running in /usr/obj", detail))
        elif state != "done":
            why = {
                "absent": f"build {build[:12]} not in /usr/obj",
                "failed": f"build {build[:12]} failed earlier",
                "interrupted": f"build {build[:12]} was interrupted",
            }[state]
            found.append(Step("build", why, detail))
        return found

    build_stage = StagePlan(
        "build", (_host_plan(builder.name, facts.get(builder.name), build_steps),)
    )

    def install_steps(host: Host) -> Any:
        def steps(hf: HostFacts) -> list[Step]:
            # The build host's config files belong to the build stage.
            found = [] if host.name == bs.build_host else _write_config(config, bs, host, hf)
            return found + _install(config, bs, host, hf, build)

        return steps

    stages = [source_stage, build_stage]
    for stage in ("test", "production"):
        members = [h for h in bs.hosts if h.stage == stage]
        stages.append(
            StagePlan(
                stage,
                tuple(_host_plan(h.name, facts.get(h.name), install_steps(h)) for h in members),
            )
        )
    return BuildSetPlan(
        name=bs.name,
        build=build,
        arch=bs.arch,
        install_method=bs.rollout.install,
        stages=tuple(stages),
        warnings=tuple(_warnings(config, bs, facts, build)),
    )


def make_plan(config: Config, facts: Mapping[str, HostFacts]) -> Plan:
    """The plan for every build set of ``config`` given the hosts' ``facts``."""
    return Plan(
        generation=config.commit,
        branch=config.source.branch,
        revision=config.source.revision,
        buildsets=tuple(plan_buildset(config, bs, facts) for bs in config.buildsets),
    )


# -- presentation (pure: Plan -> text) ------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(counts: Mapping[str, int]) -> str:
    parts = [_plural(counts["builds"], "build"), _plural(counts["reboots"], "reboot")]
    if counts["unreachable"]:
        parts.append(_plural(counts["unreachable"], "unreachable host"))
    return ", ".join(parts)


def format_text(plan: Plan) -> str:
    """The plan for a terminal: per set, per stage, per host, with counts."""
    generation = plan.generation[:12] if plan.generation else "worktree"
    lines = [f"Plan: {plan.branch} @ {plan.revision[:12]} (config {generation})"]
    for bs in plan.buildsets:
        lines.append("")
        lines.append(
            f"build set {bs.name}: build {bs.build[:12]} ({bs.arch}, {bs.install_method}); "
            f"{_summary(bs.counts())}"
        )
        for stage in bs.stages:
            lines.append(f"  {stage.name}")
            if not stage.hosts:
                lines.append("    (no hosts)")
            for hp in stage.hosts:
                if hp.in_sync:
                    lines.append(f"    {hp.host}: in sync")
                    continue
                for index, step in enumerate(hp.steps):
                    label = f"{hp.host}:" if index == 0 else " " * (len(hp.host) + 1)
                    lines.append(f"    {label} {step.kind}: {step.reason}")
        for warning in bs.warnings:
            lines.append(f"  warning: {warning}")
    lines.append("")
    if plan.in_sync:
        lines.append("Everything is in sync.")
    else:
        counts = plan.counts()
        lines.append(f"Total: {_plural(counts['steps'], 'step')}; {_summary(counts)}.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment."""
    generation = plan.generation[:12] if plan.generation else "worktree"
    counts = plan.counts()
    lines = [
        f"### reconciler plan: `{plan.branch}` @ `{plan.revision[:12]}` (config `{generation}`)",
        "",
        "Everything is in sync."
        if plan.in_sync
        else f"**{_summary(counts)}**, {_plural(counts['steps'], 'step')} in all.",
    ]
    for bs in plan.buildsets:
        lines += [
            "",
            f"#### Build set `{bs.name}`: build `{bs.build[:12]}` ({bs.arch}, {bs.install_method})",
            "",
            _summary(bs.counts()),
            "",
        ]
        if bs.steps:
            lines += ["| stage | host | step | reason |", "| --- | --- | --- | --- |"]
            for stage in bs.stages:
                for hp in stage.hosts:
                    for step in hp.steps:
                        lines.append(
                            f"| {stage.name} | `{hp.host}` | {step.kind} | {_cell(step.reason)} |"
                        )
            synced = [hp.host for st in bs.stages for hp in st.hosts if hp.in_sync]
            if synced:
                lines += ["", "In sync: " + ", ".join(f"`{h}`" for h in dict.fromkeys(synced))]
        else:
            lines.append("Every host is in sync.")
        for warning in bs.warnings:
            lines += ["", f"> **Warning:** {_cell(warning)}"]
    return "\n".join(lines) + "\n"
