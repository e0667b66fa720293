"""Every step kind the plan can name, mapped to the code that carries it out.

One ``match`` over :class:`~reconciler.vocabulary.StepKind` ending in
``assert_never``: mypy proves a new kind cannot be planned without being
carried out.
"""

from __future__ import annotations

from typing import assert_never

from reconciler.facts.host import HostFacts
from reconciler.plan import Step
from reconciler.rollout import build, install, packages, source
from reconciler.rollout.host import HostRun, StepResult
from reconciler.vocabulary import HostOutcome, LedgerOutcome, Phase, StepKind


def unreachable(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    message = f"unreachable: {step.reason}"
    w.record(message, LedgerOutcome.FAILURE, step.kind, phase=Phase.FAILED)
    return StepResult(HostOutcome.UNREACHABLE, message)


def carry_out(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Do what ``step`` says on ``w.host``; a host's trouble is a result (TransportError aside)."""
    match step.kind:
        case StepKind.UNREACHABLE:
            return unreachable(w, step, facts)
        case StepKind.CHECKOUT_SOURCE:
            return source.checkout_source(w, step, facts)
        case StepKind.COPY_KERNEL_CONFIGS:
            return source.copy_kernel_configs(w, step, facts)
        case StepKind.EXPORT_NFS:
            return source.export_nfs(w, step, facts)
        case StepKind.MOUNT_NFS:
            return source.mount_nfs(w, step, facts)
        case StepKind.CHECKOUT_PORTS:
            return packages.checkout_ports(w, step, facts)
        case StepKind.WRITE_CONFIG:
            return install.write_config(w, step, facts)
        case StepKind.REPORT_DRIFT:
            return install.report_drift(w, step, facts)
        case StepKind.BUILD:
            return build.build(w, step, facts)
        case StepKind.AWAIT_BUILD:
            return build.await_build(w, step, facts)
        case StepKind.BUILD_PACKAGES:
            return packages.build_packages(w, step, facts)
        case StepKind.AWAIT_PACKAGES:
            return packages.await_packages(w, step, facts)
        case StepKind.INSTALL | StepKind.INSTALL_KERNEL | StepKind.INSTALL_WORLD:
            return install.install(w, step, facts)
        case StepKind.AWAIT_INSTALL:
            return install.await_install(w, step, facts)
        case StepKind.INSTALL_PACKAGES:
            return packages.install_packages(w, step, facts)
        case StepKind.HEAL_PACKAGES:
            return packages.heal_packages(w, step, facts)
        case StepKind.REMOVE_PACKAGES:
            return packages.remove_packages(w, step, facts)
        case StepKind.REBOOT:
            return install.reboot(w, step, facts)
        case StepKind.RECORD_FALLBACK:
            return install.record_fallback(w, step, facts)
        case StepKind.CONFIRM:
            return install.confirm(w, step, facts)
        case _:
            assert_never(step.kind)
