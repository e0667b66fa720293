"""Desired state + facts + progress -> a Plan: the only place that compares them (pure).

Per build set, the four rollout stages; in each, per host, the ordered steps
that bring the host to the desired state, each with its reason in words. A
host in sync has no steps. The rollout carries out the first step of a
host's plan, observes the host again and asks this module again, so
``plan`` shows exactly what ``apply`` does and whatever is in sync here is
left alone there.

- the fleet's shared ``source`` stage: the src host's ``/usr/src`` at the
  desired revision, every set's custom kernel configs in ``sys/<arch>/conf``
  and its exports (one machine for every build set: planned and done once);
- ``source`` per set: exports on a build host other than the src host,
  fstab lines and mounts on the clients.
- ``build``: on the build host, make.conf/src.conf (the build reads them) and
  the build, when some host of the set needs to install it and ``/usr/obj``
  does not hold it.
- ``test``/``production``: per host make.conf/src.conf, then the install
  chain (reconciler.plan.install).
- preflight (reconciler.plan.preflight): what will fail, before anything is
  touched: problems block the set's rollout, warnings are shown.

Rendered files are compared without their managed header (which names the
repo): a commit that changes no rendered byte below it changes nothing.
Under ``rollout.drift: report`` a host that differs only in those files, or
in the managed packages it runs (reconciler.plan.packages.package_drift),
gets one ``report-drift`` step per generation and then a note; under
``heal`` they are rewritten (``write-config``) and reinstalled in place
(``heal-packages``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime

from reconciler.config import render
from reconciler.config.buildid import build_id
from reconciler.config.model import STOCK_KERNCONFS, BuildSet, Config, Host
from reconciler.facts.host import HostFacts
from reconciler.facts.mounts import Mount, parse_exports_text, parse_fstab
from reconciler.plan import packages as pkgplan
from reconciler.plan import waves, windows
from reconciler.plan.files import config_differences, config_diffs, unified_diff
from reconciler.plan.install import Running, Target, confirm_step, install_steps
from reconciler.plan.model import BuildSetPlan, HostPlan, Plan, StagePlan, Step
from reconciler.plan.preflight import preflight, work_of
from reconciler.progress import NOTHING, HostProgress, SetProgress
from reconciler.remote import build_log, short
from reconciler.vocabulary import INSTALL_STEPS, Phase, Stage, StepKind


def _config_steps(
    config: Config,
    bs: BuildSet,
    host: Host,
    facts: HostFacts,
    progress: SetProgress,
    installs: bool,
    packages: pkgplan.PackageDrift | None = None,
    files: bool = True,
) -> tuple[list[Step], list[str]]:
    """write-config and heal-packages (or one report-drift under drift: report), and notes.

    ``packages``: the managed packages changed by hand on a host that runs
    its package set; ``files``: whether make.conf/src.conf are this stage's
    to compare (not on a build host's install stage).
    """
    found = config_differences(config, bs, host, facts) if files else {}
    drifted = packages is not None and bool(packages.specs)
    if not found and not drifted:
        return [], []
    reasons = list(found.values())
    detail: dict[str, object] = {}
    heal: list[Step] = []
    if found:
        detail["files"] = sorted(found)
        diffs = config_diffs(config, bs, host, facts)
        if diffs:
            detail["diff"] = diffs
        heal.append(Step(StepKind.WRITE_CONFIG, "; ".join(found.values()), dict(detail)))
    if drifted:
        assert packages is not None
        target = pkgplan.package_set(config, bs)
        assert target is not None, "package drift is looked for only in a set with packages"
        reasons.append(packages.words())
        detail["drift"] = packages.to_json()
        heal.append(pkgplan.drift_step(packages, target))
    reason = "; ".join(reasons)
    if bs.rollout.drift == "report" and not installs:
        generation = config.commit or "worktree"
        if progress.host(host.name).drift_reported == generation:
            return [], [f"{reason} (drift: report; recorded, left as is)"]
        return [
            Step(StepKind.REPORT_DRIFT, f"{reason} (drift: report: record, change nothing)", detail)
        ], []
    return heal, []


def _unreachable(name: str, facts: HostFacts | None) -> HostPlan | None:
    if facts is None:
        return HostPlan(name, False, (Step(StepKind.UNREACHABLE, "not observed"),))
    if not facts.reachable:
        return HostPlan(name, False, (Step(StepKind.UNREACHABLE, facts.error or "unreachable"),))
    return None


def _source_steps(config: Config, facts: HostFacts) -> list[Step]:
    """The src host's own steps, for every build set at once: it is one machine for all."""
    steps = []
    want = config.source.revision
    tree = facts.source
    if tree is None or not tree.present:
        steps.append(
            Step(
                StepKind.CHECKOUT_SOURCE,
                f"no git repository in /usr/src, desired {want[:12]}",
                {"revision": want},
            )
        )
    elif tree.revision != want:
        steps.append(
            Step(
                StepKind.CHECKOUT_SOURCE,
                f"/usr/src at {(tree.revision or 'unknown')[:12]}, desired {want[:12]}",
                {"revision": want},
            )
        )
    steps += pkgplan.ports_steps(config, facts)
    for arch in dict.fromkeys(bs.arch for bs in config.buildsets):
        present = facts.kernel_configs_for(arch)
        stale = []
        idents = dict.fromkeys(
            i for bs in config.buildsets if bs.arch == arch for i in bs.kernconfs
        )
        for ident in idents:
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
                    StepKind.COPY_KERNEL_CONFIGS,
                    f"sys/{arch}/conf: {', '.join(stale)}",
                    {"arch": arch, "kernels": [s.split()[0] for s in stale]},
                )
            )
    return steps + _export_steps(config, config.src, facts)


def wanted_exports(config: Config, server: Host, facts: HostFacts) -> str:
    """The exports(5) lines ``server`` must have: one per client and file system (mountd).

    Which paths share a file system comes from the server's ``mount -p``.
    """
    paths = [render.SRC, render.OBJ] + ([config.ports.tree] if config.ports else [])
    filesystems = facts.mounts.filesystems(paths) if facts.mounts else {}
    return render.exports(config, {server.name: filesystems}).get(server.name, "")


def _export_steps(config: Config, server: Host, facts: HostFacts) -> list[Step]:
    """The server's exports(5) lines: every path it serves, to every build set."""
    wanted = parse_exports_text(wanted_exports(config, server, facts))
    have = set(facts.exports or ())
    missing = [line for line in wanted if line not in have]
    if not missing:
        return []
    named = list(dict.fromkeys(line.split()[0] for line in missing))
    paths = {line.split()[0] for line in wanted}
    managed = [line for line in facts.exports or () if line.split()[0] in paths]
    detail: dict[str, object] = {"paths": named}
    diff = unified_diff("/etc/exports", managed, list(wanted))
    if diff:
        detail["diff"] = {"/etc/exports": diff}
    return [Step(StepKind.EXPORT_NFS, f"/etc/exports lacks {', '.join(named)}", detail)]


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
    points = {m.mountpoint for m in wanted}
    diff = unified_diff(
        "/etc/fstab",
        [_fstab_line(m) for m in fstab if m.mountpoint in points],
        [_fstab_line(m) for m in wanted],
    )
    detail: dict[str, object] = {"mountpoints": [m.mountpoint for m in wanted]}
    if diff:
        detail["diff"] = {"/etc/fstab": diff}
    return [Step(StepKind.MOUNT_NFS, "; ".join(problems), detail)]


def _fstab_line(mount: Mount) -> str:
    # The four fields the plan compares (dump and pass are not read back).
    return f"{mount.device} {mount.mountpoint} {mount.fstype} {mount.options}"


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
    config: Config, bs: BuildSet, facts: Mapping[str, HostFacts], build: str, installs: bool
) -> list[str]:
    # /usr/obj on its own file system and bectl's usability are preflight's (problems there).
    found = []
    builder = facts.get(bs.build_host)
    if builder is not None and builder.reachable:
        obj = builder.objtree.builds.get(build) if builder.objtree else None
        if obj is not None and obj.state == "failed":
            found.append(
                f"{bs.build_host}: build {short(build)} failed earlier (exit {obj.exit_code}); "
                f"see {build_log(build)}"
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
    blind = [
        host.name
        for host in bs.hosts
        if (hf := facts.get(host.name)) is not None
        and hf.reachable
        and hf.versions is not None
        and not hf.versions.vcs_known
    ]
    if blind:
        found.append(
            f"{', '.join(blind)}: uname -v names no git revision (the kernel was built without "
            "git in /usr/bin or /usr/local/bin, newvers.sh): verified by the build marker, the "
            "kernel ident and the kernel's build directory instead"
        )
    if bs.rollout.install == "in-place" and installs:
        found.append(
            "in-place installs have no automatic rollback: a host that fails verification "
            "stays on what was installed (boot /boot/kernel.old by hand), and its "
            "make.conf/src.conf stay as written"
        )
    return found


def _host_plan(
    name: str,
    facts: HostFacts | None,
    steps_for: Callable[[HostFacts], tuple[list[Step], list[str]]],
) -> HostPlan:
    down = _unreachable(name, facts)
    if down is not None:
        return down
    assert facts is not None
    steps, notes = steps_for(facts)
    return HostPlan(name, True, tuple(steps), tuple(notes))


def target_for(config: Config, bs: BuildSet, host: Host, progress: SetProgress) -> Target:
    """What ``host`` must run under ``config``."""
    build = build_id(config, bs)
    unit = pkgplan.unit_id(config, bs)
    confirmed = progress.phase(host.name, unit) == Phase.DONE
    return Target(
        build=build,
        revision=config.source.revision,
        kernconf=host.kernconf,
        in_place=bs.rollout.install == "in-place",
        needs_test=host.stage == "test" and not progress.tested_build(unit) and not confirmed,
        confirm_timeout=bs.rollout.confirm_timeout,
        smoke_checks=len(bs.rollout.smoke_checks),
        pkgset=pkgplan.package_set(config, bs),
        packages=pkgplan.wanted(bs, host),
    )


def host_install_plan(
    config: Config,
    bs: BuildSet,
    host: Host,
    facts: HostFacts | None,
    progress: SetProgress,
    *,
    source_planned: bool = False,
    now: datetime | None = None,
) -> HostPlan:
    """One test or production host's plan: config files, then the install chain.

    An install needs /usr/src and /usr/obj mounted: when they are not (a reboot
    whose boot-time mount failed, say) the chain starts with ``mount-nfs``,
    unless ``source_planned`` (the same plan's source stage mounts them first).
    ``now`` (aware; default: the system's time) judges the maintenance windows
    and freezes: a chain that has not started waits for them from its first
    install or reboot on (reconciler.plan.windows).
    """

    held = progress.quarantined.get(pkgplan.unit_id(config, bs))
    if held is not None and facts is not None and facts.reachable:
        short_id = short(pkgplan.unit_id(config, bs))
        return HostPlan(
            host.name,
            True,
            held=f"build {short_id} is quarantined ({held}); "
            f"`reconciler release {bs.name} {short_id}` to try it again",
        )

    def steps(hf: HostFacts) -> tuple[list[Step], list[str]]:
        found, notes = install_chain(hf)
        removal = pkgplan.removal_step(hf.packages) if bs.packages is None else None
        # The packages: block was dropped: last, on whatever root the host then runs.
        return ([*found, removal], notes) if removal is not None else (found, notes)

    def install_chain(hf: HostFacts) -> tuple[list[Step], list[str]]:
        target = target_for(config, bs, host, progress)
        if (
            target.needs_test
            and bs.packages is None
            and pkgplan.confirmed_with_packages(progress.host(host.name), hf.packages)
            and Running.of(hf).world_runs(target)
        ):
            # The packages: block was dropped and the host runs the world it was confirmed
            # on (as a package set, in a BE named after it): the removal is what the test
            # stage tries now, not the world again (remove-packages records it confirmed).
            target = dataclasses.replace(target, needs_test=False)
        ended = {
            part: code
            for part in ("", "kernel", "world")
            if hf.install_jobs is not None
            and (code := hf.install_jobs.exit_code(target.build, part or target.be_job_part))
            is not None
        }
        mine = progress.host(host.name)
        chain = _with_packages(install_steps(hf, mine, target, ended), bs, host, hf, target, mine)
        installs = any(s.kind in INSTALL_STEPS for s in chain)
        # Drift among the managed packages, on a host otherwise in sync with its package set.
        drift = None
        if not chain and target.pkgset and pkgplan.runs_package_set(hf.packages, target.pkgset):
            drift = pkgplan.package_drift(hf.packages, target.packages)
        if not source_planned and host.name != config.src_host:
            needs = [i for i, s in enumerate(chain) if s.kind in INSTALL_STEPS]
            if needs:
                at = needs[0]
                chain = chain[:at] + _mount_steps(config, host, hf) + chain[at:]
        if host.name == bs.build_host:
            if drift is not None:  # its config files belong to the build stage
                return _config_steps(config, bs, host, hf, progress, False, drift, files=False)
            return chain, []
        if chain and not target.in_place:
            # The install writes make.conf/src.conf into the new BE, never the running
            # /etc: the old BE keeps its own, so a rollback restores them too.
            if config_differences(config, bs, host, hf):
                diffs = config_diffs(config, bs, host, hf)
                return _with_diffs(chain, diffs), [
                    "make.conf/src.conf go into the new boot environment"
                ]
            return chain, []
        config_steps, notes = _config_steps(config, bs, host, hf, progress, installs, drift)
        return config_steps + chain, notes

    plan = _host_plan(host.name, facts, steps)
    return _window_wait(config, bs, plan, progress.phase(host.name, build_id(config, bs)), now)


def _window_wait(
    config: Config, bs: BuildSet, plan: HostPlan, phase: Phase, now: datetime | None
) -> HostPlan:
    """``plan`` with its wait for the window or freeze, if it starts a disruption while closed.

    A chain already under way (an install job started, a reboot asked for) is
    not held: a window that closes mid-install lets the host finish.
    """
    at = next((i for i, s in enumerate(plan.steps) if s.kind in windows.GATED), None)
    if at is None or phase in windows.UNDER_WAY or not (bs.rollout.windows or config.freezes):
        return plan
    state = windows.gate(bs.rollout.windows, config.freezes, now or datetime.now(UTC))
    if state.open:
        return plan
    return dataclasses.replace(plan, waiting=state.why, waits_at=at)


def _with_packages(
    chain: list[Step],
    bs: BuildSet,
    host: Host,
    hf: HostFacts,
    target: Target,
    mine: HostProgress,
) -> list[Step]:
    """The install step says what it does with packages ("3 packages to upgrade, 1 to remove")."""
    if target.pkgset is None:
        return chain
    change = pkgplan.change_for(bs, host, hf.packages, target.pkgset)
    if target.in_place:
        return _in_place_packages(chain, hf, target, change, mine)
    at = next((i for i, s in enumerate(chain) if s.kind == StepKind.INSTALL), None)
    if at is None:
        return chain
    step = chain[at]
    with_change = Step(
        step.kind,
        f"{step.reason}: {change.words()}",
        {**step.detail, "packages": change.to_json()},
    )
    return [*chain[:at], with_change, *chain[at + 1 :]]


def _in_place_packages(
    chain: list[Step],
    hf: HostFacts,
    target: Target,
    change: pkgplan.PackageChange,
    mine: HostProgress,
) -> list[Step]:
    """In place: pkg on the live root once the new world runs, then confirm (no rollback)."""
    if pkgplan.runs_package_set(hf.packages, target.pkgset):
        if not chain and mine.build == target.unit and mine.phase == Phase.INSTALLING:
            return [confirm_step(target, "packages installed")]  # not confirmed yet
        return chain
    if chain and chain[-1].kind != StepKind.CONFIRM:
        return chain  # a fall-back to record: the host stops there
    confirm = chain[-1] if chain else None
    step = Step(
        StepKind.INSTALL_PACKAGES,
        f"package set {short(target.unit)} on the live root (pkg upgrade, install, delete; "
        f"no rollback in place): {change.words()}",
        {"build": target.build, "pkgset": target.pkgset, "packages": change.to_json()},
    )
    if confirm is None:
        confirm = confirm_step(target, "then")
    return [*chain[:-1], step, confirm] if chain else [step, confirm]


def _with_diffs(chain: list[Step], diffs: dict[str, str]) -> list[Step]:
    """The chain with the files' diffs on its install step (they go into the new BE)."""
    if not diffs:
        return chain
    at = next((i for i, s in enumerate(chain) if s.kind in INSTALL_STEPS), None)
    if at is None:
        return chain
    step = chain[at]
    with_diff = Step(step.kind, step.reason, {**step.detail, "diff": diffs})
    return [*chain[:at], with_diff, *chain[at + 1 :]]


def shared_plan(config: Config, facts: HostFacts | None) -> HostPlan:
    """The src host's steps, shared by every build set: /usr/src, kernel configs, its exports."""
    return _host_plan(config.src_host, facts, lambda hf: (_source_steps(config, hf), []))


def source_host_plan(config: Config, bs: BuildSet, host: Host, facts: HostFacts | None) -> HostPlan:
    """A host's own source-stage steps in its build set: a build host's exports, its mounts."""

    def steps(hf: HostFacts) -> tuple[list[Step], list[str]]:
        serves = host.name == bs.build_host and host.name != config.src_host
        found = _export_steps(config, host, hf) if serves else []
        return found + _mount_steps(config, host, hf), []

    return _host_plan(host.name, facts, steps)


def build_host_plan(
    config: Config,
    bs: BuildSet,
    facts: HostFacts | None,
    progress: SetProgress,
    needed: bool,
) -> HostPlan:
    """The build host's config files, and the build when ``needed`` and not in /usr/obj."""
    build = build_id(config, bs)

    def steps(hf: HostFacts) -> tuple[list[Step], list[str]]:
        state = hf.objtree.state(build) if hf.objtree else "absent"
        builds = needed and state != "done"
        found, notes = _config_steps(config, bs, bs.build, hf, progress, builds)
        detail = {"build": build, "kernconfs": list(bs.kernconfs), "jobs": bs.jobs}
        # After the world build (the jail is made from it), once per package set id.
        packages = pkgplan.package_build_steps(config, bs, hf, needed)
        if not builds:
            return found + packages, notes
        if state == "running":
            found.append(Step(StepKind.AWAIT_BUILD, f"build {short(build)} running", detail))
        else:
            why = {
                "absent": f"build {short(build)} not in /usr/obj",
                "failed": f"build {short(build)} failed earlier",
                "interrupted": f"build {short(build)} was interrupted",
            }[state]
            found.append(Step(StepKind.BUILD, why, detail))
        return found + packages, notes

    return _host_plan(bs.build_host, facts, steps)


def _gates(
    config: Config,
    bs: BuildSet,
    install_stages: list[StagePlan],
    progress: SetProgress,
    build: str,
    now: datetime,
) -> list[str]:
    """The waits the rollout observes between the steps, in words (each is enforced there)."""
    _, production = install_stages
    busy = [h.host for st in install_stages for h in st.hosts if h.reachable and h.steps]
    found = []
    waiting = [h for st in install_stages for h in st.hosts if h.waiting is not None]
    if waiting:
        found.append(
            f"{waiting[0].waiting}: installs that reboot and reboots wait "
            f"({', '.join(h.host for h in waiting)}); source and build go on now"
        )
    elif busy and (bs.rollout.windows or config.freezes):
        state = windows.gate(bs.rollout.windows, config.freezes, now)
        if state.open and state.closes is not None:
            found.append(windows.describe_open(state, now))
    if build in progress.quarantined:
        found.append(
            f"build {short(build)} is quarantined: it failed its test stage "
            f"({progress.quarantined[build]}); nothing is installed until "
            f"`reconciler release {bs.name} {short(build)}`"
        )
    if production.steps and not progress.tested_build(build):
        found.append(f"production waits until build {short(build)} passes the test stage")
    if production.steps:
        found.append(
            waves.describe(bs.rollout.batch, bs.rollout.max_failures, len(production.hosts))
        )
    groups: dict[str, list[str]] = {}
    for host in bs.hosts:
        if host.group is not None and host.name in busy:
            groups.setdefault(host.group, []).append(host.name)
    for group, members in sorted(groups.items()):
        found.append(
            f"reboot group {group}: at most {config.max_down(group)} host(s) installing or "
            f"rebooting at once ({', '.join(members)} here; the group spans build sets)"
        )
    return found


def plan_buildset(
    config: Config,
    bs: BuildSet,
    facts: Mapping[str, HostFacts],
    progress: SetProgress = NOTHING,
    hosts: AbstractSet[str] | None = None,
    now: datetime | None = None,
) -> BuildSetPlan:
    """The set's plan; with ``hosts``, only their steps and what they need (``--host``).

    What they need: the build host's exports (it serves them /usr/obj) and the
    build, when one of them installs it. ``now``: as host_install_plan's.
    """
    build = build_id(config, bs)
    now = now or datetime.now(UTC)

    def chosen(host: Host) -> bool:
        return hosts is None or host.name in hosts

    source_stage = StagePlan(
        Stage.SOURCE,
        tuple(
            source_host_plan(config, bs, h, facts.get(h.name))
            for h in bs.hosts
            if h.name != config.src_host and (chosen(h) or h.name == bs.build_host)
        ),
    )
    install_stages = [
        StagePlan(
            stage,
            tuple(
                host_install_plan(
                    config, bs, h, facts.get(h.name), progress, source_planned=True, now=now
                )
                for h in bs.hosts
                if h.stage == stage and chosen(h)
            ),
        )
        for stage in (Stage.TEST, Stage.PRODUCTION)
    ]
    needed = any(s.kind in INSTALL_STEPS for stage in install_stages for s in stage.steps)
    build_stage = StagePlan(
        Stage.BUILD,
        (build_host_plan(config, bs, facts.get(bs.build_host), progress, needed),),
    )
    stages = (source_stage, build_stage, *install_stages)
    unit = pkgplan.unit_id(config, bs)
    work = work_of(config, bs, facts, stages, _exports_in_place(config, bs, facts))
    findings = preflight(config, bs, facts, work)
    problems = [f for f in findings if f.level == "problem"]
    warnings = _warnings(config, bs, facts, build, needed)
    left_out = [h.name for h in bs.test_hosts if not chosen(h)]
    if left_out and needed and not progress.tested_build(unit):
        warnings.append(
            f"build {short(build)} has not passed the test stage and its test host "
            f"({', '.join(left_out)}) is not selected: production hosts wait for it"
        )
    return BuildSetPlan(
        name=bs.name,
        build=build,
        arch=bs.arch,
        install_method=bs.rollout.install,
        stages=stages,
        warnings=tuple(warnings) + tuple(f.text for f in findings if f.level == "warning"),
        gates=tuple(_gates(config, bs, install_stages, progress, unit, now)),
        problems=tuple(f.text for f in problems),
        problem_keys=tuple(f.key for f in problems),
        pkgset=pkgplan.package_set(config, bs),
    )


def _exports_in_place(
    config: Config, bs: BuildSet, facts: Mapping[str, HostFacts]
) -> frozenset[str]:
    """The set's NFS servers (src host, build host) whose exports(5) lines are all there."""
    found = set()
    for server in dict.fromkeys([config.src, bs.build]):
        hf = facts.get(server.name)
        if (
            hf is not None
            and hf.reachable
            and wanted_exports(config, server, hf)
            and not _export_steps(config, server, hf)
        ):
            found.add(server.name)
    return frozenset(found)


def make_plan(
    config: Config,
    facts: Mapping[str, HostFacts],
    progress: Mapping[str, SetProgress] | None = None,
    *,
    buildsets: AbstractSet[str] | None = None,
    hosts: AbstractSet[str] | None = None,
    now: datetime | None = None,
) -> Plan:
    """The plan for every build set of ``config`` given the hosts' ``facts`` and progress.

    ``buildsets``/``hosts`` narrow it (``--buildset``, ``--host``); the src
    host's shared steps stay, since every selection needs /usr/src.
    """
    found = progress or {}
    selected = [
        bs
        for bs in config.buildsets
        if (buildsets is None or bs.name in buildsets)
        and (hosts is None or any(h.name in hosts for h in bs.hosts))
    ]
    return Plan(
        generation=config.commit,
        branch=config.source.branch,
        revision=config.source.revision,
        shared=StagePlan(Stage.SOURCE, (shared_plan(config, facts.get(config.src_host)),)),
        buildsets=tuple(
            plan_buildset(config, bs, facts, found.get(bs.name, NOTHING), hosts, now)
            for bs in selected
        ),
    )
