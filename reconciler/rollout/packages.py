"""Carrying out the package steps (issue 11, docs/packages.md): the plan decided them.

- ``checkout-ports``: the src host's ports tree at ``ports.revision`` (the
  same three git steps as /usr/src);
- ``build-packages`` / ``await-packages``: the set's repository, built once
  on the build host after the world build (poudriere or make), detached like
  the world build and followed by its ``>>>`` lines; old package sets pruned;
- the install command of a boot-environment host whose set lists packages
  (rollout/install.py asks :func:`be_install_command`): world, kernel and
  packages into one new BE, or for a packages-only change the packages into
  a BE cloned from the running one;
- ``heal-packages`` (drift: heal): the managed packages removed or changed
  by hand, reinstalled from the host's repository on the running root (no
  new BE, no reboot: the host keeps the package set it runs);
- ``remove-packages``: the set's ``packages:`` block was dropped; the
  origins the reconciler's record names are deleted (or marked automatic
  while something still needs them), then the record and reconciler.conf.
"""

from __future__ import annotations

from reconciler import remote
from reconciler.config import render
from reconciler.config.model import BuildSet
from reconciler.errors import CommandTimeout, TransportError
from reconciler.facts.host import HostFacts
from reconciler.plan import Step, Target, target_for
from reconciler.plan.packages import confirmed_with_packages, dropped, package_set
from reconciler.rollout import jobs, pkgscripts, scripts
from reconciler.rollout.build import build_failed
from reconciler.rollout.host import HostRun, StepResult
from reconciler.statusstore import Update, utc_now
from reconciler.transport.command import sh
from reconciler.vocabulary import EventKind, HostOutcome, LedgerOutcome, Phase, Stage, StepKind

GIT_TIMEOUT = 3600.0
BUILD_TIMEOUT = 24 * 3600.0
_HEX = frozenset("0123456789abcdef")


def checkout_ports(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    ports = w.run.ctx.config.ports
    assert ports is not None and ports.revision is not None
    present = facts.ports is not None and facts.ports.present
    conn = w.conn()
    for argv in pkgscripts.ports_checkout_commands(
        ports.tree, ports.url or "", ports.branch or "", ports.revision, present=present
    ):
        out = conn.run(argv, timeout=GIT_TIMEOUT)
        if not out.ok:
            message = (
                f"{' '.join(argv[:4])} failed: {(out.stderr or out.stdout).strip()} "
                f"(is {ports.revision[:12]} on {ports.branch}?)"
            )
            w.record(message, LedgerOutcome.FAILURE, step.kind)
            return StepResult(HostOutcome.FAILURE, message)
    w.record(f"{ports.tree} checked out at {ports.revision[:12]}", LedgerOutcome.SUCCESS, step.kind)
    return StepResult.done()


# -- the package build ----------------------------------------------------------


def _pkgset(w: HostRun) -> str:
    found = package_set(w.run.ctx.config, w.run.buildset)
    assert found is not None, "a package step is planned only for a set with packages"
    return found


def build_packages(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """Write the build's files, start the detached package build, follow it."""
    config, bs = w.run.ctx.config, w.run.buildset
    pkgset = _pkgset(w)
    assert bs.packages is not None and config.ports is not None
    conn = w.conn()
    conn.run(scripts.prepare_dirs(remote.LOG_DIR, remote.DB_DIR), timeout=60)
    for path, text in render.package_build_files(config, bs).items():
        conn.run(scripts.prepare_dirs(path.rsplit("/", 1)[0]), timeout=60)
        conn.write_file(path, text)
    inputs = pkgscripts.inputs_text(
        pkgset_id=pkgset,
        build_id=w.build,
        ports_revision=config.ports.revision or "",
        method=bs.packages.method,
        origins=bs.packages.all_origins,
    )
    if bs.packages.method == "poudriere":
        command = pkgscripts.poudriere_build_command(w.build, pkgset, config.ports.tree, inputs)
    else:
        key = bs.packages.signing.key if bs.packages.signing is not None else ""
        command = pkgscripts.make_build_command(pkgset, config.ports.tree, inputs, key)
    w.run.record(
        Update(
            subject=f"{bs.name}: package set {remote.short(pkgset)} build started on "
            f"{w.host.name} ({bs.packages.method}, {len(bs.packages.all_origins)} origin(s))",
            stage=Stage.BUILD,
            outcome=LedgerOutcome.STARTED,
            step=StepKind.BUILD_PACKAGES,
            host=w.host.name,
        )
    )
    try:
        jobs.start(conn, pkgscripts.packages_job(pkgset), command)
    except jobs.JobError as exc:
        return _failed(w, step, pkgset, str(exc), "")
    return _follow(w, step, pkgset)


def await_packages(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    pkgset = _pkgset(w)
    w.say(f"re-attaching to the running package build {remote.short(pkgset)}", EventKind.BUILD)
    return _follow(w, step, pkgset)


def _follow(w: HostRun, step: Step, pkgset: str) -> StepResult:
    run, bs = w.run, w.run.buildset
    job = pkgscripts.packages_job(pkgset)
    conn = w.conn()
    try:
        result = w.follow(conn, job, EventKind.BUILD, BUILD_TIMEOUT)
    except (CommandTimeout, TransportError) as exc:
        return _failed(w, step, pkgset, str(exc), "")
    if result.state == "running":
        return StepResult(
            HostOutcome.WAITING,
            f"stopped; package set {remote.short(pkgset)} goes on building, the next run "
            "re-attaches",
        )
    if result.state == "finished" and result.exit_code == 0:
        run.record(
            Update(
                subject=f"{bs.name}: package set {remote.short(pkgset)} finished on "
                f"{w.host.name} ({remote.pkg_repo(pkgset)})",
                stage=Stage.BUILD,
                outcome=LedgerOutcome.SUCCESS,
                step=step.kind,
                host=w.host.name,
            )
        )
        prune(w, bs, pkgset)
        return StepResult.done()
    tail = jobs.LogFollower(job, lambda _: None).tail(conn, 25)
    failed = [t.strip() for t in tail if ": Failed" in t or "Failed ports:" in t]
    why = (
        f"exit {result.exit_code}"
        if result.state == "finished"
        else "the package build died without an exit status (build host rebooted?)"
    )
    if failed:
        why += f" ({'; '.join(failed[:3])})"
    return _failed(w, step, pkgset, why, "Last lines of " + job.log + ":\n" + "\n".join(tail))


def _failed(w: HostRun, step: Step, pkgset: str, why: str, body: str) -> StepResult:
    message = f"package set {remote.short(pkgset)} failed on {w.host.name}: {why}"
    return build_failed(w, step, message, body, after="; nothing installed")


def prune(w: HostRun, bs: BuildSet, pkgset: str) -> None:
    """Keep the newest ``packages.keep`` package sets (always this one): going back reuses them."""
    assert bs.packages is not None
    conn = w.conn()
    listing = conn.run(["ls", "-1t", remote.PKG_SETS], timeout=60)
    sets = [n for n in listing.stdout.split() if len(n) == 64 and set(n) <= _HEX]
    keep = ([pkgset] + [s for s in sets if s != pkgset])[: max(1, bs.packages.keep)]
    if len(sets) > len(keep):
        jails = [remote.pkg_jail(w.build)]
        conn.run(pkgscripts.prune_package_sets_command(keep, jails), timeout=3600)
        w.say(f"kept the newest {len(keep)} package sets in {remote.PKG_SETS}", EventKind.BUILD)


# -- installs -------------------------------------------------------------------


def be_install_command(
    w: HostRun,
    target: Target,
    facts: HostFacts,
    marker: str,
    files: dict[str, str],
    *,
    packages_only: bool,
) -> list[str]:
    """The boot-environment install job of a set with packages (see the module's doc)."""
    config, bs = w.run.ctx.config, w.run.buildset
    assert target.pkgset is not None
    conf = render.pkg_repo_conf(config, bs)
    pkg_marker = pkgscripts.marker_text(
        pkgset_id=target.pkgset, origins=target.packages, when=utc_now()
    )
    drop = dropped(facts.packages, target.packages)
    if packages_only:
        return pkgscripts.be_clone_packages_command(
            build_id=target.build,
            be=target.be,
            part=target.be_job_part,
            pkgset_id=target.pkgset,
            conf=conf,
            pkg_marker=pkg_marker,
            install=target.packages,
            drop=drop,
        )
    return pkgscripts.be_install_with_packages_command(
        build_id=target.build,
        be=target.be,
        part=target.be_job_part,
        kernconf=target.kernconf,
        marker=marker,
        make_conf=files["/etc/make.conf"],
        src_conf=files["/etc/src.conf"],
        pkgset_id=target.pkgset,
        conf=conf,
        pkg_marker=pkg_marker,
        install=target.packages,
        drop=drop,
        smoke_checks=bs.rollout.smoke_checks,
    )


def install_packages(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """In place: pkg upgrade, install and delete on the live root (a detached job, followed)."""
    config, bs = w.run.ctx.config, w.run.buildset
    target = target_for(config, bs, w.host, w.run.progress)
    assert target.pkgset is not None
    conn = w.conn()
    conn.run(scripts.prepare_dirs(remote.LOG_DIR, remote.DB_DIR), timeout=60)
    job = pkgscripts.pkg_install_job(target.pkgset)
    subject = f"installing package set {remote.short(target.pkgset)} in place"
    w.record(subject, LedgerOutcome.STARTED, step.kind, phase=Phase.INSTALLING)
    if not (facts.jobs is not None and facts.jobs.install_running):
        command = pkgscripts.inplace_packages_command(
            target.pkgset,
            render.pkg_repo_conf(config, bs),
            pkgscripts.marker_text(
                pkgset_id=target.pkgset, origins=target.packages, when=utc_now()
            ),
            target.packages,
            dropped(facts.packages, target.packages),
        )
        try:
            jobs.start(conn, job, command)
        except jobs.JobError as exc:
            return _install_failed(w, step, str(exc), "")

    def line(text: str) -> None:
        if text.startswith(">>> "):
            w.run.ctx.say(EventKind.INSTALL, text[4:], bs, w.host)

    try:
        state = jobs.wait(
            conn,
            job,
            timeout=BUILD_TIMEOUT,
            clock=w.run.ctx.clock,
            on_line=line,
            stopped=w.run.ctx.stop.is_set,
        )
    except CommandTimeout as exc:
        return _install_failed(w, step, str(exc), "")
    if state.state == "running":
        return StepResult(HostOutcome.WAITING, f"stopped; {job.name} goes on, detached")
    if state.state == "finished" and state.exit_code == 0:
        return StepResult.done()
    tail = jobs.LogFollower(job, lambda _: None).tail(conn, 30)
    why = f"exit {state.exit_code}" if state.state == "finished" else "the job died"
    return _install_failed(
        w,
        step,
        f"{job.name} failed ({why}); in place, the packages before the failing one stay installed",
        "Last lines of " + job.log + ":\n" + "\n".join(tail),
    )


def _install_failed(w: HostRun, step: Step, message: str, body: str) -> StepResult:
    w.record(
        message, LedgerOutcome.FAILURE, step.kind, phase=Phase.FAILED, body=body, with_facts=True
    )
    return StepResult(HostOutcome.FAILURE, message)


# -- drift and removal (in place on the running root) ---------------------------

HEAL_TIMEOUT = 3600.0


def heal_packages(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """drift: heal: ``pkg install -f`` of the drifted origins from the reconciler repository.

    ``-f`` (pkg-install(8)) reinstalls a package that is installed at another
    version, whichever way the version moved; a missing one is installed. The
    repository file is written first, as the set renders it: the reinstall
    must come from the package set the host runs, not from a file edited by hand.
    """
    config, bs = w.run.ctx.config, w.run.buildset
    specs = [str(s) for s in step.detail.get("reinstall", ())]
    conn = w.conn()
    conn.run(scripts.prepare_dirs(remote.PKG_REPO_CONF.rsplit("/", 1)[0]), timeout=60)
    conn.write_file(remote.PKG_REPO_CONF, render.pkg_repo_conf(config, bs))
    out = conn.run(["pkg", "install", "-f", "-y", "-r", "reconciler", *specs], timeout=HEAL_TIMEOUT)
    if not out.ok:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-20:])
        message = f"pkg install -f {' '.join(specs)} failed (exit {out.exit_code}): {step.reason}"
        w.record(message, LedgerOutcome.FAILURE, step.kind, body=tail)
        return StepResult(HostOutcome.FAILURE, message, tail)
    w.record(f"reinstalled {', '.join(specs)} ({step.reason})", LedgerOutcome.HEALED, step.kind)
    return StepResult.done()


# Deletes what nothing else needs, pass after pass (a dependency among the
# origins goes once what needed it is gone); what is still needed then (by a
# package the administrator installed) is marked automatic: pkg delete would
# take their package along (pkg-delete(8)).
_REMOVE = """
marker=$1; conf=$2; shift 2
passes=$#
while [ "$passes" -gt 0 ]; do
  passes=$((passes-1)); left=
  for o do
    pkg query '%n' "$o" >/dev/null 2>&1 || continue
    if [ "$(pkg query '%?r' "$o")" = 0 ]; then
      echo ">>> reconciler: pkg delete $o"; pkg delete -y "$o" || exit 1
    else
      left="$left $o"
    fi
  done
  [ -n "$left" ] || break
  set -- $left
done
for o do
  pkg query '%n' "$o" >/dev/null 2>&1 || continue
  echo ">>> reconciler: pkg set -A 1 $o (still needed)"; pkg set -y -A 1 "$o" || exit 1
done
rm -f "$marker" "$conf"
"""


def remove_packages_command(origins: tuple[str, ...]) -> list[str]:
    """Delete ``origins`` (the record's) on the running root, then the record, reconciler.conf."""
    return sh(_REMOVE, remote.PKG_MARKER, remote.PKG_REPO_CONF, *origins)


def remove_packages(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    """The set lists no packages any more: remove the ones the reconciler installed, only them."""
    origins = tuple(str(o) for o in step.detail.get("remove", ()))
    out = w.conn().run(remove_packages_command(origins), timeout=HEAL_TIMEOUT)
    if not out.ok:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-20:])
        message = f"removing the reconciler's packages failed (exit {out.exit_code})"
        w.record(message, LedgerOutcome.FAILURE, step.kind, phase=Phase.FAILED, body=tail)
        return StepResult(HostOutcome.FAILURE, message, tail)
    # Confirmed on the package set before, on the same world (the planner checked): it is
    # confirmed on the build now, so it is not tested again for the packages it lost.
    confirmed = confirmed_with_packages(w.run.progress.host(w.host.name), facts.packages)
    w.record(
        f"removed {', '.join(origins) or 'no package'} (buildset.yaml lists no packages); "
        "the record and reconciler.conf are gone",
        LedgerOutcome.SUCCESS,
        step.kind,
        phase=Phase.DONE if confirmed else None,
    )
    return StepResult.done()
