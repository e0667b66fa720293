"""Stage 2, build: once per build id, on the build host, detached, followed by its log."""

from __future__ import annotations

from reconciler import remote
from reconciler.config.buildid import short
from reconciler.errors import CommandTimeout, TransportError
from reconciler.facts.host import HostFacts
from reconciler.rollout import jobs, scripts
from reconciler.rollout.configs import write_configs
from reconciler.rollout.context import SetRun
from reconciler.rollout.state import utc_now

BUILD_TIMEOUT = 24 * 3600.0
_HEX = frozenset("0123456789abcdef")


class BuildFailed(Exception):
    pass


def run_build_stage(run: SetRun, facts: HostFacts) -> bool:
    """Make sure the build exists; True if a build ran. Raises BuildFailed."""
    ctx, bs, b = run.ctx, run.buildset, run.build_id
    host = bs.build
    if not facts.reachable:
        raise BuildFailed(f"build host {host.name} is unreachable: {facts.error}")
    state = facts.objtree.state(b) if facts.objtree else "absent"
    if state == "done":
        return False
    job = scripts.build_job(b)
    generation = ctx.generation

    def line(text: str) -> None:
        if text.startswith(">>> "):
            ctx.say("build", text[4:], bs, host)

    try:
        conn = ctx.conn(host)
        if state != "running":
            # The build reads the build host's /etc/src.conf and make.conf.
            write_configs(run, host, facts, reason="before building")
            inputs = (
                f"build={b}\nrevision={ctx.config.source.revision}\narch={bs.arch}\n"
                f"kernconfs={' '.join(bs.kernconfs)}\nstarted={utc_now()}\n"
            )
            conn.run(
                scripts.prepare_dirs(f"{remote.objdir(b)}/{remote.BUILD_META}"), timeout=60
            )
            conn.write_file(f"{remote.objdir(b)}/{remote.BUILD_INPUTS}", inputs)
            run.state.record(
                f"{bs.name}: build {short(b)} started on {host.name} "
                f"(KERNCONF={' '.join(bs.kernconfs)})",
                generation=generation,
                stage="build",
                outcome="started",
                build=b,
                host=host.name,
                changes={"stage": "build"},
            )
            jobs.start(conn, job, scripts.build_command(b, bs.jobs, bs.kernconfs))
        else:
            ctx.say("build", f"re-attaching to the running build {short(b)}", bs, host)
        result = jobs.wait(conn, job, timeout=BUILD_TIMEOUT, clock=ctx.clock, on_line=line)
    except (CommandTimeout, TransportError, jobs.JobError) as exc:
        _failed(run, host.name, str(exc), "")
        raise BuildFailed(str(exc)) from exc
    if result.state == "finished" and result.exit_code == 0:
        run.state.record(
            f"{bs.name}: build {short(b)} finished on {host.name}",
            generation=generation,
            stage="build",
            outcome="success",
            build=b,
            host=host.name,
        )
        prune(run)
        return True
    tail = jobs.LogFollower(job, lambda _: None).tail(conn, 25)
    why = (
        f"make exited {result.exit_code}"
        if result.state == "finished"
        else "the build died without an exit status (build host rebooted?)"
    )
    _failed(run, host.name, why, "Last lines of " + job.log + ":\n" + "\n".join(tail))
    raise BuildFailed(f"build {short(b)} failed on {host.name}: {why}")


def _failed(run: SetRun, host: str, why: str, body: str) -> None:
    run.state.record(
        f"{run.buildset.name}: build {short(run.build_id)} failed on {host}: {why}",
        generation=run.ctx.generation,
        stage="build",
        outcome="failure",
        build=run.build_id,
        host=host,
        body=body,
        changes={"outcome": "failed", "stage": "build"},
    )


def prune(run: SetRun) -> None:
    """Keep the newest ``keep_builds`` builds (always the current one) in /usr/obj."""
    conn = run.ctx.conn(run.buildset.build)
    listing = conn.run(["ls", "-1t", remote.OBJ], timeout=60)
    builds = [n for n in listing.stdout.split() if len(n) == 64 and set(n) <= _HEX]
    keep = [run.build_id] + [b for b in builds if b != run.build_id]
    keep = keep[: max(1, run.buildset.rollout.keep_builds)]
    if len(builds) > len(keep):
        conn.run(scripts.prune_builds_command(keep), timeout=3600)
        run.ctx.say("build", f"kept the newest {len(keep)} builds in /usr/obj", run.buildset)
