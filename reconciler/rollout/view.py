"""The install decisions' view of a host, read through reconciler.facts."""

from __future__ import annotations

from reconciler.config.model import Config, Host
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe_host
from reconciler.rollout.decide import HostView
from reconciler.transport.ssh import Connection


def view_of(facts: HostFacts) -> HostView:
    """Pure: HostFacts → HostView."""
    versions = facts.versions
    envs = facts.boot_envs
    booted = envs.booted if envs else None
    next_boot = envs.next_boot if envs else None
    permanent = next((be for be in envs.environments if be.on_reboot), None) if envs else None
    return HostView(
        running_ident=versions.ident if versions else None,
        running_hash12=versions.revision12 if versions else None,
        marker_build=facts.marker.build if facts.marker else None,
        booted_be=booted.name if booted else None,
        next_boot_be=next_boot.name if next_boot else None,
        permanent_be=permanent.name if permanent else None,
        bes=tuple(be.name for be in envs.environments) if envs else (),
        kernel_pending=bool(facts.boot and facts.boot.reboot_pending),
    )


def read_view(conn: Connection, config: Config, host: Host) -> HostView:
    return view_of(observe_host(conn, config, host))


def verify_problems(
    view: HostView, *, build_id: str, kernconf: str, hash12: str, be: str | None
) -> list[str]:
    """What differs between the running host and the build it should run (pure)."""
    problems = []
    if view.running_ident != kernconf:
        problems.append(f"uname -i is {view.running_ident}, expected {kernconf}")
    if view.running_hash12 != hash12:
        problems.append(f"uname -v carries {view.running_hash12}, expected {hash12}")
    if view.marker_build != build_id:
        problems.append(
            f"installed build is {(view.marker_build or 'none')[:12]}, expected {build_id[:12]}"
        )
    if be is not None and view.booted_be != be:
        problems.append(f"booted boot environment is {view.booted_be}, expected {be}")
    return problems
