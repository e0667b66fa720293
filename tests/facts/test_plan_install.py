"""A host's install chain from its facts and recorded phase (reconciler.plan.install, pure).

These are the resume cases: a reconciler killed at any point and started
again plans from the host's facts and the phase the ledger recorded, so
nothing is installed twice and no step is skipped.
"""

from __future__ import annotations

from reconciler.facts.boot import BootFile
from reconciler.facts.bootenv import BootEnvironment, BootEnvironments
from reconciler.facts.host import HostFacts
from reconciler.facts.installjobs import InstallJobs
from reconciler.facts.jobs import Jobs
from reconciler.facts.marker import InstalledMarker
from reconciler.facts.versions import KernelSource, Versions
from reconciler.plan.install import Target, install_steps
from reconciler.plan.verify import verify_problems
from reconciler.progress import HostProgress
from reconciler.remote import be_name
from reconciler.vocabulary import Phase

B = "3f2a9c1e0b7d" + "0" * 52
BE = be_name(B)
REV = "5a3e9b1c2d4f" + "0" * 28
BE_TARGET = Target(B, REV, "WEB", in_place=False, needs_test=False)
IP_TARGET = Target(B, REV, "WEB", in_place=True, needs_test=False)


def _envs(
    booted: str, permanent: str, one_shot: str | None, names: tuple[str, ...]
) -> BootEnvironments:
    def flags(name: str) -> str:
        found = ("N" if name == booted else "") + ("R" if name == permanent else "")
        found += "T" if name == one_shot else ""
        return found or "-"

    return BootEnvironments(
        True,
        tuple(
            BootEnvironment(n, flags(n), "/" if n == booted else None, "1G", "2024-11-19 10:00")
            for n in names
        ),
    )


def host(
    *,
    new_kernel: bool = False,
    marker: str | None = None,
    booted: str = "default",
    permanent: str = "default",
    one_shot: str | None = None,
    bes: tuple[str, ...] = ("default",),
    running: bool = False,
    ended: dict[str, int] | None = None,
    pending: bool = False,
    boottime: str = "{ sec = 100, usec = 0 } Thu Jan  1 00:01:40 1970",
) -> HostFacts:
    ident, hash12 = ("WEB", REV[:12]) if new_kernel else ("GENERIC", "aaaaaaaaaaaa")
    return HostFacts(
        host="web1",
        reachable=True,
        versions=Versions(
            "14.2-STABLE",
            "14.2-STABLE",
            "14.2-STABLE",
            ident,
            f"FreeBSD 14.2-STABLE #0 stable/14-n1-{hash12}",
            KernelSource(hash12, 1, "stable/14"),
            1402000,
            1402000,
            "amd64",
        ),
        boot=BootFile("/boot/kernel.old/kernel" if pending else "/boot/kernel/kernel"),
        marker=InstalledMarker(marker, REV, "WEB", "g", "t") if marker else None,
        boot_envs=_envs(booted, permanent, one_shot, bes),
        jobs=Jobs(None, 4242 if running else None),
        boottime=boottime,
        install_jobs=InstallJobs({f"{B}-{k}" if k else B: v for k, v in (ended or {}).items()}),
    )


def be(facts: HostFacts, phase: Phase = Phase.NONE, target: Target = BE_TARGET) -> list[str]:
    ended = {
        part: code
        for part in ("", "kernel", "world")
        if (code := facts.install_jobs.exit_code(B, part) if facts.install_jobs else None)
        is not None
    }
    return [str(s.kind) for s in install_steps(facts, HostProgress(B, phase), target, ended)]


NEW = dict(new_kernel=True, marker=B)


class TestBootEnvironment:
    def test_fresh_host_gets_the_whole_chain(self) -> None:
        assert be(host()) == ["install", "reboot", "confirm"]

    def test_running_job_is_followed_not_restarted(self) -> None:
        assert be(host(running=True), Phase.INSTALLING) == ["await-install", "reboot", "confirm"]

    def test_finished_job_reboots(self) -> None:
        assert be(host(bes=("default", BE), ended={"": 0}), Phase.INSTALLING) == [
            "reboot",
            "confirm",
        ]

    def test_activated_not_rebooted_reboots(self) -> None:
        facts = host(bes=("default", BE), one_shot=BE, ended={"": 0})
        assert be(facts, Phase.ACTIVATED) == ["reboot", "confirm"]

    def test_failed_job_is_collected_once_then_installed_again(self) -> None:
        assert be(host(ended={"": 2}), Phase.INSTALLING) == ["await-install"]
        # a later, deliberate retry starts over
        assert be(host(ended={"": 2}), Phase.FAILED) == ["install", "reboot", "confirm"]

    def test_booted_one_shot_is_confirmed(self) -> None:
        facts = host(**NEW, booted=BE, permanent="default", bes=("default", BE))
        assert be(facts, Phase.REBOOTING) == ["confirm"]

    def test_permanent_and_done_is_in_sync(self) -> None:
        facts = host(**NEW, booted=BE, permanent=BE, bes=("default", BE))
        assert be(facts, Phase.DONE) == []
        assert be(facts, Phase.NONE) == []

    def test_permanent_but_not_confirmed_after_a_reboot_is_confirmed_again(self) -> None:
        facts = host(**NEW, booted=BE, permanent=BE, bes=("default", BE))
        assert be(facts, Phase.REBOOTING) == ["confirm"]

    def test_untested_build_is_confirmed_with_a_soak_on_a_test_host(self) -> None:
        facts = host(**NEW, booted=BE, permanent=BE, bes=("default", BE))
        target = Target(B, REV, "WEB", in_place=False, needs_test=True)
        steps = install_steps(facts, HostProgress(B, Phase.DONE), target, {})
        assert [s.kind for s in steps] == ["confirm"] and "soak" in steps[0].reason

    def test_reboot_that_came_back_on_the_old_be_fell_back(self) -> None:
        facts = host(bes=("default", BE), ended={"": 0})
        assert be(facts, Phase.REBOOTING) == ["record-fallback"]

    def test_reboot_recorded_but_never_asked_for_is_asked_for(self) -> None:
        # Killed between the ledger commit and `shutdown -r now`: the one-shot is still set.
        facts = host(bes=("default", BE), one_shot=BE, ended={"": 0})
        assert be(facts, Phase.REBOOTING) == ["reboot", "confirm"]

    def test_an_intact_earlier_be_is_booted_again_not_installed_again(self) -> None:
        facts = host(bes=("default", BE, "rc-bbbbbbbbbbbb"), booted="rc-bbbbbbbbbbbb",
                     permanent="rc-bbbbbbbbbbbb")  # fmt: skip
        confirmed = HostProgress("b" * 64, Phase.DONE, installed_bes={BE: "2024-11-19 10:00"})
        steps = install_steps(facts, confirmed, BE_TARGET, {})
        assert [s.kind for s in steps] == ["reboot", "confirm"]
        assert steps[0].reason.startswith(f"instant revert: {BE} is intact")
        # made anew since (another creation time): installed again
        remade = HostProgress("b" * 64, Phase.DONE, installed_bes={BE: "2024-11-18 09:00"})
        assert next(s.kind for s in install_steps(facts, remade, BE_TARGET, {})) == "install"

    def test_phase_of_another_build_counts_for_nothing(self) -> None:
        facts = host(bes=("default", BE), ended={"": 0})
        other = HostProgress("f" * 64, Phase.REBOOTING)
        steps = install_steps(facts, other, BE_TARGET, {"": 0})
        assert [s.kind for s in steps] == ["reboot", "confirm"]


def ip(facts: HostFacts, phase: Phase = Phase.NONE, recorded_boottime: str = "") -> list[str]:
    ended = {
        part: code
        for part in ("", "kernel", "world")
        if (code := facts.install_jobs.exit_code(B, part) if facts.install_jobs else None)
        is not None
    }
    progress = HostProgress(B, phase, boottime=recorded_boottime)
    return [str(s.kind) for s in install_steps(facts, progress, IP_TARGET, ended)]


class TestInPlace:
    def test_handbook_order(self) -> None:
        assert ip(host()) == ["install-kernel", "reboot", "install-world", "reboot", "confirm"]
        kernel_done = host(pending=True, ended={"kernel": 0})
        assert ip(kernel_done, Phase.INSTALLING) == ["reboot", "install-world", "reboot", "confirm"]
        booted_kernel = host(new_kernel=True, ended={"kernel": 0})
        assert ip(booted_kernel, Phase.KERNEL_INSTALLED) == ["install-world", "reboot", "confirm"]
        world_done = host(**NEW, ended={"kernel": 0, "world": 0})
        assert ip(world_done, Phase.WORLD_INSTALLED) == ["reboot", "confirm"]
        assert ip(world_done, Phase.REBOOTING_WORLD, "{ sec = 1, usec = 0 }") == ["confirm"]
        assert ip(world_done, Phase.DONE) == []

    def test_world_reboot_recorded_but_never_asked_for(self) -> None:
        # Same boot time as when "rebooting-world" was recorded: the host never went down.
        world_done = host(**NEW, ended={"world": 0})
        same = world_done.boottime or ""
        assert ip(world_done, Phase.REBOOTING_WORLD, same) == ["reboot", "confirm"]

    def test_kernel_that_did_not_take(self) -> None:
        assert ip(host(ended={"kernel": 0}), Phase.REBOOTING_KERNEL) == ["record-fallback"]

    def test_kernel_reboot_recorded_but_never_asked_for(self) -> None:
        pending = host(pending=True, ended={"kernel": 0})
        assert ip(pending, Phase.REBOOTING_KERNEL) == [
            "reboot",
            "install-world",
            "reboot",
            "confirm",
        ]

    def test_failures_and_running_jobs(self) -> None:
        assert ip(host(ended={"kernel": 2}), Phase.INSTALLING) == ["await-install"]
        booted_kernel = host(new_kernel=True, ended={"kernel": 0, "world": 2})
        assert ip(booted_kernel, Phase.KERNEL_INSTALLED) == ["await-install"]
        running = host(new_kernel=True, running=True, ended={"kernel": 0})
        assert ip(running, Phase.KERNEL_INSTALLED) == ["await-install", "reboot", "confirm"]


class TestVerify:
    def test_every_difference_is_named(self) -> None:
        assert verify_problems(host(**NEW, booted=BE, bes=("default", BE)), BE_TARGET) == []
        problems = verify_problems(host(), BE_TARGET)
        assert problems == [
            "uname -i is GENERIC, expected WEB",
            f"uname -v carries aaaaaaaaaaaa, expected {REV[:12]}",
            f"installed build is none, expected {B[:12]}",
            f"booted boot environment is default, expected {BE}",
        ]
        assert verify_problems(host(**NEW), IP_TARGET) == []
