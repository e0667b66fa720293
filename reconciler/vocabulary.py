"""The project's words as types: stages, step kinds, outcomes, event kinds.

Every module that branches on one of these matches on the enum and ends with
``assert_never``, so mypy proves a new word is handled everywhere. The values
are what the ledger's trailers, the plan's JSON and the logs carry; they are
part of the contract with users' scripts and must not be renamed lightly.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """A rollout stage, in the order the engine runs them."""

    SOURCE = "source"
    BUILD = "build"
    TEST = "test"
    PRODUCTION = "production"


class Scope(StrEnum):
    """Ledger records that belong to no rollout stage."""

    CONFIG = "config"  # a config commit validated or rejected
    DAEMON = "daemon"  # the daemon's own decisions (signature policy)


class StepKind(StrEnum):
    """One thing the plan says must happen on a host; the rollout carries out exactly these."""

    UNREACHABLE = "unreachable"  # not observed: nothing can be decided
    # source
    CHECKOUT_SOURCE = "checkout-source"
    COPY_KERNEL_CONFIGS = "copy-kernel-configs"
    EXPORT_NFS = "export-nfs"
    MOUNT_NFS = "mount-nfs"
    CHECKOUT_PORTS = "checkout-ports"  # the src host's ports tree at ports.revision
    # build
    WRITE_CONFIG = "write-config"
    REPORT_DRIFT = "report-drift"  # drift: report: record the difference, change nothing
    BUILD = "build"
    AWAIT_BUILD = "await-build"
    BUILD_PACKAGES = "build-packages"  # the set's package repository, after the world build
    AWAIT_PACKAGES = "await-packages"  # a package build runs, or ended while nobody watched
    # install (test, production)
    INSTALL = "install"  # boot-environment: the whole world and kernel into a new BE
    INSTALL_KERNEL = "install-kernel"  # in-place, before the first reboot
    INSTALL_WORLD = "install-world"  # in-place, after it
    AWAIT_INSTALL = "await-install"  # an install job runs, or ended while nobody watched
    INSTALL_PACKAGES = "install-packages"  # in-place: pkg upgrade/install/delete on the live root
    HEAL_PACKAGES = "heal-packages"  # drift: heal: reinstall managed packages changed by hand
    REMOVE_PACKAGES = "remove-packages"  # packages: dropped: delete what the reconciler installed
    REBOOT = "reboot"  # (one-shot activation and) shutdown -r, wait for the new boot
    RECORD_FALLBACK = "record-fallback"  # came back on the old system: record it, stop
    CONFIRM = "confirm"  # verify, health checks, soak; make a one-shot activation permanent


#: Steps that change what a host boots (they need a finished build).
INSTALL_STEPS = frozenset(
    {
        StepKind.INSTALL,
        StepKind.INSTALL_KERNEL,
        StepKind.INSTALL_WORLD,
        StepKind.INSTALL_PACKAGES,
    }
)


class HostOutcome(StrEnum):
    """How one host ended in one rollout."""

    SUCCESS = "success"  # runs the desired state (nothing needed, or installed and healthy)
    HEALED = "healed"  # only its config files were rewritten
    DRIFT = "drift"  # differs, reported, left as is (drift: report)
    FAILURE = "failure"
    ROLLED_BACK = "rolled-back"
    SKIPPED = "skipped"  # not started (an earlier stage failed, or the budget ran out)
    UNREACHABLE = "unreachable"
    WAITING = "waiting"  # stopped before its next step (interrupted)


#: Outcomes that make a generation failed: never retried until a new commit.
FAILED_HOST_OUTCOMES = frozenset({HostOutcome.FAILURE, HostOutcome.ROLLED_BACK})
#: Outcomes of a host that is on the desired state after the rollout.
GOOD_HOST_OUTCOMES = frozenset({HostOutcome.SUCCESS, HostOutcome.HEALED})


class LedgerOutcome(StrEnum):
    """The ``Reconciler-Outcome`` trailer of a ledger commit."""

    STARTED = "started"
    SUCCESS = "success"
    FAILURE = "failure"
    ROLLED_BACK = "rolled-back"
    HALTED = "halted"
    INTERRUPTED = "interrupted"  # asked to stop: stopped at a safe point, resumable
    DRIFT = "drift"
    HEALED = "healed"
    REJECTED = "rejected"
    VALIDATED = "validated"
    ADOPTED = "adopted"  # reconciler init: the fleet as it runs is the baseline
    QUARANTINED = "quarantined"  # a build failed its test stage: not retried by itself
    RELEASED = "released"  # a person lifted a quarantine (reconciler release)


class EventKind(StrEnum):
    """Progress events for people, logs and observers."""

    STAGE = "stage"  # a stage of a build set starts
    STEP = "step"  # a plan step starts
    BUILD = "build"  # a line of the build's progress (>>> ...)
    INSTALL = "install"  # a line of an install's progress
    HOST = "host"  # something happened on a host
    CONFIG = "config"  # config files written
    WARNING = "warning"
    INFO = "info"


class Phase(StrEnum):
    """Where a host's install stands, as the ledger records it before each irreversible act.

    Only what facts cannot show goes here: that a reboot was asked for (and
    the boot time before it), that an install job was started by us.
    """

    NONE = ""
    INSTALLING = "installing"  # an install job was started
    ACTIVATED = "activated"  # the new BE is activated for the next boot only
    REBOOTING = "rebooting"  # shutdown -r asked for (boot time recorded)
    KERNEL_INSTALLED = "kernel-installed"  # in-place: booted the new kernel
    REBOOTING_KERNEL = "rebooting-kernel"  # in-place: reboot after installkernel
    WORLD_INSTALLED = "world-installed"  # in-place: installworld done, reboot due
    REBOOTING_WORLD = "rebooting-world"  # in-place: reboot after installworld
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"


class RolloutStatus(StrEnum):
    """A build set's rollout of one generation, as status/<set>/rollout.json says."""

    RUNNING = "running"
    CONVERGED = "converged"
    FAILED = "failed"
