"""A host's install steps, from its facts and its recorded phase (pure).

Boot-environment hosts (tools/build/beinstall.sh + ``bectl activate -t``):
``install`` (world and kernel into a new BE) → ``reboot`` (one-shot
activation, shutdown, wait for the new boot) → ``confirm`` (verify, health
checks, soak on the test stage, make the activation permanent).

In-place hosts (the handbook's order): ``install-kernel`` → ``reboot`` →
``install-world`` → ``reboot`` → ``confirm``.

The plan lists the whole remaining chain, so ``plan`` shows every step
``apply`` will take; the rollout carries out the first, observes again and
plans again. ``await-install`` follows a job that runs or ended while no
reconciler watched; ``record-fallback`` records that a host came back on
its old system after a reboot into the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from reconciler.facts.host import HostFacts
from reconciler.facts.versions import revision_matches
from reconciler.plan.model import Step
from reconciler.progress import HostProgress
from reconciler.remote import be_name, build_of_kernel, short
from reconciler.vocabulary import Phase, StepKind


@dataclass(frozen=True)
class Target:
    """What one host must run."""

    build: str  # build id
    revision: str  # 40-hex source revision
    kernconf: str
    in_place: bool
    #: the test stage has not passed with this build: confirm (and soak) even if it runs it
    needs_test: bool
    #: boot-environment hosts: seconds the new BE's watchdog waits for the confirmation
    confirm_timeout: int = 300
    #: how many smoke checks of its own the build set runs in the new BE
    smoke_checks: int = 0
    #: the set's package set id (None: it lists no packages) and the origins this host runs
    pkgset: str | None = None
    packages: tuple[str, ...] = ()

    @property
    def hash12(self) -> str:
        return self.revision[:12]

    @property
    def unit(self) -> str:
        """What progress is keyed by: the package set (it covers the build), else the build."""
        return self.pkgset or self.build

    @property
    def be(self) -> str:
        # With packages, world and packages switch together: a BE per package set.
        base = be_name(self.build)
        return f"{base}-{self.pkgset[:8]}" if self.pkgset else base

    @property
    def be_job_part(self) -> str:
        """The install job's part for a boot-environment install (one job per package set)."""
        return f"p{self.pkgset[:12]}" if self.pkgset else ""


@dataclass(frozen=True)
class Running:
    """The install-relevant facts of a host, in one place."""

    ident: str | None
    #: the abbreviated hash uname -v names (newvers.sh: git's abbreviation, 7+ digits), or None
    hash12: str | None
    #: the build whose objdir the running kernel was built in (None: unknown, not ours)
    kernel_build: str | None
    marker: str | None
    booted_be: str | None
    next_boot_be: str | None
    permanent_be: str | None
    bes: tuple[str, ...]
    #: BE name -> its bectl list "Created" column
    created: Mapping[str, str]
    kernel_pending: bool
    install_running: bool
    boottime: str | None
    #: the package set the running root carries (the reconciler's record), None: none
    pkgset: str | None = None

    @classmethod
    def of(cls, facts: HostFacts) -> Running:
        versions, envs = facts.versions, facts.boot_envs
        booted = envs.booted if envs else None
        upcoming = envs.next_boot if envs else None
        permanent = next((be for be in envs.environments if be.on_reboot), None) if envs else None
        return cls(
            ident=versions.ident if versions else None,
            hash12=versions.abbrev if versions else None,
            kernel_build=build_of_kernel(versions.kernel_version) if versions else None,
            marker=facts.marker.build if facts.marker else None,
            booted_be=booted.name if booted else None,
            next_boot_be=upcoming.name if upcoming else None,
            permanent_be=permanent.name if permanent else None,
            bes=tuple(be.name for be in envs.environments) if envs else (),
            created={be.name: be.created for be in envs.environments} if envs else {},
            kernel_pending=bool(facts.boot and facts.boot.reboot_pending),
            install_running=bool(facts.jobs and facts.jobs.install_running),
            boottime=facts.boottime,
            pkgset=facts.packages.marker.pkgset
            if facts.packages is not None and facts.packages.marker is not None
            else None,
        )

    def runs(self, target: Target) -> bool:
        return self.world_runs(target) and (target.pkgset is None or self.pkgset == target.pkgset)

    def world_runs(self, target: Target) -> bool:
        return self.marker == target.build and self.kernel_is(target)

    def revision_known(self) -> bool:
        return self.hash12 is not None

    def revision_is(self, target: Target) -> bool:
        """uname -v names the target's revision (a prefix of it, as git abbreviates)."""
        return revision_matches(self.hash12, target.revision)

    def kernel_is(self, target: Target) -> bool:
        # The revision alone is not enough: a build of the same revision with
        # another src.conf is another kernel. Ours say which build in uname -v
        # (the objdir), which is all there is when uname -v names no revision
        # (a build host without git, newvers.sh). With neither, the ident is all.
        if self.ident != target.kernconf:
            return False
        from_build = self.kernel_build is None or self.kernel_build == target.build
        if self.revision_known():
            return self.revision_is(target) and from_build
        return from_build


def _detail(target: Target, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "build": target.build,
        "revision": target.revision,
        "kernconf": target.kernconf,
    }
    if not target.in_place:
        found["be"] = target.be
    if target.pkgset is not None:
        found["pkgset"] = target.pkgset
    return {**found, **extra}


#: The smoke test's own checks, run in the new BE before any reboot (rollout/smoke.py).
SMOKE_BUILT_IN = ("sshd -t", "freebsd-version -u", "sh -n /etc/rc.conf")


def _confirm(target: Target, reason: str) -> Step:
    what = "verify, run the health checks"
    if not target.in_place:
        what += ", confirm over a new SSH connection (its watchdog stands down)"
    if target.needs_test:
        what += ", soak"
    if not target.in_place:
        what += f", make {target.be} permanent and remove its watchdog"
    else:
        what += " (in place: no confirm-or-revert watchdog, it cannot undo an in-place world)"
    return Step(StepKind.CONFIRM, f"{reason}: {what}", _detail(target))


def confirm_step(target: Target, reason: str) -> Step:
    """The chain's last step (for a step another module puts before it)."""
    return _confirm(target, reason)


def _reboot(target: Target, reason: str, previous: str | None = None) -> Step:
    if target.in_place:
        return Step(StepKind.REBOOT, reason, _detail(target))
    back = previous or "the booted boot environment"
    armed = (
        f"; a watchdog in {target.be} brings back {back} unless confirmed within "
        f"{target.confirm_timeout}s"
    )
    detail = _detail(target, confirm_timeout=target.confirm_timeout)
    if previous:
        detail["revert_to"] = previous
    return Step(StepKind.REBOOT, reason + armed, detail)


def _smoke(target: Target) -> str:
    checks = ", ".join(SMOKE_BUILT_IN)
    if target.smoke_checks:
        plural = "s" if target.smoke_checks != 1 else ""
        checks += f" and {target.smoke_checks} smoke_check{plural} of the set"
    return f"smoke-test it in a jail ({checks})"


def _why_install(run: Running, target: Target) -> str:
    if run.kernel_build is not None and run.kernel_build != target.build:
        return f"running kernel of build {short(run.kernel_build)}, desired {short(target.build)}"
    if run.revision_known() and not run.revision_is(target):
        return f"running kernel built from {run.hash12}, desired {target.hash12}"
    if run.ident != target.kernconf:
        return f"running kernel {run.ident or 'unknown'}, desired {target.kernconf}"
    if run.marker is None:
        return f"no reconciler build installed, desired {short(target.build)}"
    return f"installed build {short(run.marker)}, desired {short(target.build)}"


def install_steps(
    facts: HostFacts, progress: HostProgress, target: Target, ended: dict[str, int]
) -> list[Step]:
    """The remaining install chain of one reachable host (empty: it runs the target).

    ``ended``: exit status of this build's install jobs that have ended
    (key "" for the boot-environment job, "kernel"/"world" in place).
    """
    run = Running.of(facts)
    if run.marker is None and progress.adopted and progress.build == target.build:
        # reconciler init recorded that this host runs the build as it was found
        # (no marker of ours yet); a later change of build inputs installs as usual.
        run = replace(run, marker=target.build)
    phase = progress.phase if progress.build == target.unit else Phase.NONE
    if target.in_place:
        return _in_place(run, phase, progress, target, ended)
    return _boot_environment(run, phase, progress, target, ended)


def _boot_environment(
    run: Running, phase: Phase, progress: HostProgress, target: Target, ended: dict[str, int]
) -> list[Step]:
    be = target.be
    after_install = [
        _reboot(target, f"boot {be} once (bectl activate -t), then reboot", run.booted_be),
        _confirm(target, "then"),
    ]
    if run.runs(target) and run.booted_be == be:
        if run.permanent_be != be or phase in (Phase.ACTIVATED, Phase.REBOOTING):
            return [_confirm(target, f"runs {be} from a one-shot activation")]
        if target.needs_test:
            return [_confirm(target, f"runs {be}; the test stage has not passed with it")]
        return []
    if run.runs(target) and phase in (Phase.NONE, Phase.DONE):
        # Runs the build outside our BE (installed by hand, say): nothing to undo.
        if target.needs_test:
            return [_confirm(target, "runs the build; the test stage has not passed with it")]
        return []
    if run.install_running:
        return [
            Step(StepKind.AWAIT_INSTALL, f"the install into {be} is running", _detail(target)),
            *after_install,
        ]
    if (
        phase in (Phase.NONE, Phase.DONE, Phase.ROLLED_BACK)
        and be in run.bes
        and run.booted_be != be
        and progress.installed_bes.get(be) == run.created.get(be)
    ):
        # Going back to a generation whose boot environment is still as this host
        # installed and confirmed it (same name, same creation time): boot it
        # again instead of installing into it again. A revert costs a reboot.
        return [
            _reboot(
                target,
                f"instant revert: {be} is intact (confirmed earlier); boot it again",
                run.booted_be,
            ),
            _confirm(target, "then"),
        ]
    if phase == Phase.REBOOTING:
        if run.next_boot_be == be and run.booted_be != be:
            # The one-shot activation is still pending: the reboot never happened
            # (the reconciler died between recording it and asking for it).
            return [
                _reboot(
                    target,
                    f"{be} is activated for the next boot; reboot not done yet",
                    run.booted_be,
                ),
                _confirm(target, "then"),
            ]
        return [
            Step(
                StepKind.RECORD_FALLBACK,
                f"came back on {run.booted_be or 'another boot environment'}, not {be}: "
                "the new system did not boot and the one-shot activation fell back, or it "
                f"booted and its watchdog reverted it (not confirmed within "
                f"{target.confirm_timeout}s)",
                _detail(target, booted=run.booted_be or ""),
            )
        ]
    code = ended.get("")
    if code is not None and code != 0 and phase == Phase.INSTALLING:
        return [
            Step(
                StepKind.AWAIT_INSTALL,
                f"the install into {be} ended (exit {code}) while no reconciler watched",
                _detail(target, exit=code),
            )
        ]
    if code == 0 and be in run.bes and phase != Phase.FAILED:
        return after_install
    if target.pkgset is not None and run.world_runs(target):
        # Same world, another package set: a new BE cloned from the running one,
        # its packages upgraded there; promoted like a new world.
        why = (
            f"runs package set {short(run.pkgset or 'none')}, desired {short(target.pkgset)} "
            f"(world unchanged); {be} cloned from the running one, packages upgraded in it"
        )
        return [Step(StepKind.INSTALL, why, _detail(target, mode="packages")), *after_install]
    why = _why_install(run, target) + f"; install into {be}, {_smoke(target)}"
    if target.pkgset is not None:
        why += f", with package set {short(target.pkgset)}"
    return [
        Step(
            StepKind.INSTALL,
            why,
            _detail(target, smoke_checks=len(SMOKE_BUILT_IN) + target.smoke_checks),
        ),
        *after_install,
    ]


def _in_place(
    run: Running, phase: Phase, progress: HostProgress, target: Target, ended: dict[str, int]
) -> list[Step]:
    confirm = _confirm(target, "then")
    world = [
        Step(
            StepKind.INSTALL_WORLD,
            "etcupdate -p, installworld, etcupdate, delete-old",
            _detail(target),
        ),
        _reboot(target, "reboot into the new world"),
        confirm,
    ]
    rebooted = not progress.boottime or run.boottime != progress.boottime
    if phase == Phase.REBOOTING_WORLD and not rebooted:
        return [
            _reboot(target, "a reboot after installworld was recorded but never happened"),
            confirm,
        ]
    if run.world_runs(target):
        if phase in (Phase.KERNEL_INSTALLED, Phase.WORLD_INSTALLED):
            return [_reboot(target, "world installed; the reboot after it is due"), confirm]
        if phase == Phase.REBOOTING_WORLD:
            return [_confirm(target, "booted the new world")]
        if target.needs_test:
            return [_confirm(target, "runs the build; the test stage has not passed with it")]
        return []
    if not run.kernel_is(target):
        kernel_chain = [_reboot(target, f"boot kernel {target.kernconf}"), *world]
        if run.install_running:
            return [
                Step(StepKind.AWAIT_INSTALL, "installkernel is running", _detail(target)),
                *kernel_chain,
            ]
        if phase == Phase.REBOOTING_KERNEL:
            if run.kernel_pending:
                return [
                    _reboot(
                        target, "kernel installed (kern.bootfile under kernel.old), not booted"
                    ),
                    *world,
                ]
            return [
                Step(
                    StepKind.RECORD_FALLBACK,
                    f"after installkernel and reboot it runs {run.ident} {run.hash12}, "
                    f"not {target.kernconf} {target.hash12}",
                    _detail(target, booted=f"{run.ident} {run.hash12}"),
                )
            ]
        code = ended.get("kernel")
        if code is not None and code != 0 and phase == Phase.INSTALLING:
            return [
                Step(
                    StepKind.AWAIT_INSTALL,
                    f"installkernel ended (exit {code}) while no reconciler watched",
                    _detail(target, exit=code),
                )
            ]
        if run.kernel_pending and code == 0:
            return [_reboot(target, "kernel installed, not booted yet"), *world]
        return [
            Step(
                StepKind.INSTALL_KERNEL,
                _why_install(run, target) + "; installkernel first",
                _detail(target),
            ),
            *kernel_chain,
        ]
    if run.install_running:
        return [
            Step(StepKind.AWAIT_INSTALL, "installworld is running", _detail(target)),
            *world[1:],
        ]
    code = ended.get("world")
    if code is not None and code != 0 and phase == Phase.KERNEL_INSTALLED:
        return [
            Step(
                StepKind.AWAIT_INSTALL,
                f"installworld ended (exit {code}) while no reconciler watched",
                _detail(target, exit=code),
            )
        ]
    return world
