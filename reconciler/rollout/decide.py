"""Where a host's install stands, and what to do next: pure decisions from facts.

A reconciler killed at any point and started again reads the host afresh and
this module says how to continue, so nothing is installed twice and no step
is skipped. Two inputs beyond the host's facts: the state of the detached
install job (jobs.JobState) and the phase the ledger recorded for the host
(only for what facts cannot show: that a reboot was already asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.rollout.jobs import JobState

Phase = Literal[
    "",
    "installing",
    "activated",
    "rebooting",
    "verifying",
    "soaking",
    "done",
    "failed",
    "rolled-back",
    "kernel-installed",
    "rebooting-kernel",
    "world-installed",
    "rebooting-world",
]


@dataclass(frozen=True)
class HostView:
    """The facts an install decision needs (built from reconciler.facts)."""

    running_ident: str | None  # uname -i
    running_hash12: str | None  # from uname -v
    marker_build: str | None  # /var/db/reconciler/installed of the running root
    booted_be: str | None  # bectl list -H: the N flag
    next_boot_be: str | None  # T flag if any, else R flag
    permanent_be: str | None  # R flag
    bes: tuple[str, ...] = ()
    kernel_pending: bool = False  # kern.bootfile under /boot/kernel.old

    def runs(self, build_id: str, kernconf: str, hash12: str) -> bool:
        return (
            self.marker_build == build_id
            and self.running_ident == kernconf
            and self.running_hash12 == hash12
        )

    def kernel_is(self, kernconf: str, hash12: str) -> bool:
        return self.running_ident == kernconf and self.running_hash12 == hash12


Action = Literal[
    "in-sync",  # runs the build, permanently: nothing to do (config files aside)
    # runs the build from a one-shot activation (or its checks are unfinished):
    # verify, health checks, soak, make the activation permanent
    "confirm",
    "fell-back",  # a reboot into the new build was asked for and the host is on something else
    "wait-install",  # the install job is running: follow it
    "install-failed",  # the install job ended non-zero: report its log
    "activate-reboot",  # installed into its BE, not activated or not yet rebooted
    "reboot",  # activated for next boot, reboot not yet done
    "install",  # start (or start over) the install job
    # in-place only
    "install-kernel",
    "reboot-kernel",
    "kernel-fell-back",
    "install-world",
    "reboot-world",
]


def decide_be(
    view: HostView, *, build_id: str, kernconf: str, hash12: str, be: str, job: JobState, phase: str
) -> Action:
    """Next step of a boot-environment install (tools/build/beinstall.sh + bectl activate -t)."""
    if view.runs(build_id, kernconf, hash12) and view.booted_be == be:
        if view.permanent_be == be and phase not in (
            "activated",
            "rebooting",
            "verifying",
            "soaking",
        ):
            return "in-sync"
        return "confirm"
    if view.runs(build_id, kernconf, hash12) and phase in ("", "done"):
        return "in-sync"  # runs the build outside our BE (e.g. installed by hand): nothing to undo
    if job.state == "running":
        return "wait-install"
    if phase == "rebooting":
        if view.next_boot_be == be and view.booted_be != be:
            # The one-shot activation is still pending: the reboot never
            # happened (the reconciler died between recording it and asking).
            return "reboot"
        return "fell-back"
    if job.state == "finished" and job.exit_code != 0 and phase == "installing":
        return "install-failed"
    if job.state == "finished" and job.exit_code == 0 and be in view.bes and phase != "failed":
        if view.next_boot_be == be and phase == "activated":
            return "reboot"
        return "activate-reboot"
    return "install"


def decide_in_place(
    view: HostView,
    *,
    build_id: str,
    kernconf: str,
    hash12: str,
    kernel_job: JobState,
    world_job: JobState,
    phase: str,
    rebooted: bool = True,
) -> Action:
    """Next step of the handbook's in-place sequence (kernel, reboot, world, reboot).

    ``rebooted`` is False when the ledger recorded a reboot but the host's boot
    time did not change: the reboot was never asked for.
    """
    if phase == "rebooting-world" and not rebooted:
        return "reboot-world"
    if view.runs(build_id, kernconf, hash12):
        if phase in ("kernel-installed", "world-installed"):
            # The world job finished (its marker is there) but the reboot the
            # handbook asks for after installworld has not happened yet.
            return "reboot-world"
        if phase in ("rebooting-world", "verifying", "soaking"):
            return "confirm"
        return "in-sync"
    if not view.kernel_is(kernconf, hash12):
        if kernel_job.state == "running":
            return "wait-install"
        if phase == "rebooting-kernel":
            # kern.bootfile under kernel.old: installed, not booted yet.
            return "reboot-kernel" if view.kernel_pending else "kernel-fell-back"
        if kernel_job.state == "finished" and kernel_job.exit_code != 0 and phase == "installing":
            return "install-failed"
        if view.kernel_pending and kernel_job.state == "finished" and kernel_job.exit_code == 0:
            return "reboot-kernel"
        return "install-kernel"
    if world_job.state == "running":
        return "wait-install"
    if world_job.state == "finished" and world_job.exit_code != 0 and phase == "kernel-installed":
        return "install-failed"
    return "install-world"
