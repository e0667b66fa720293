"""Source steps: /usr/src at the revision, kernel configs in place, NFS exported and mounted."""

from __future__ import annotations

from reconciler.config import render
from reconciler.config.model import Host
from reconciler.facts.host import HostFacts
from reconciler.plan import Step, wanted_exports
from reconciler.remote import SRC
from reconciler.rollout.context import Context
from reconciler.rollout.files import merge_block
from reconciler.rollout.host import HostRun, StepResult
from reconciler.transport.ssh import Connection
from reconciler.vocabulary import HostOutcome, LedgerOutcome

GIT_TIMEOUT = 3600.0


class SourceFailed(Exception):
    """The stage cannot complete; the message says why and what to do."""


def checkout(ctx: Context, facts: HostFacts) -> list[str]:
    """/usr/src on the src host at the desired revision; returns what was done."""
    config = ctx.config
    src = config.src
    tree = facts.source
    rev = config.source.revision
    if tree is not None and tree.present and tree.revision == rev:
        return []
    conn = ctx.conn(src)
    done = []
    if tree is None or not tree.present:
        out = conn.run(
            ["git", "clone", "--no-checkout", config.source.url, "/usr/src"], timeout=GIT_TIMEOUT
        )
        if not out.ok:
            raise SourceFailed(
                f"{src.name}: git clone {config.source.url} /usr/src failed: "
                f"{out.stderr.strip()} (is /usr/src empty?)"
            )
        done.append(f"cloned {config.source.url} into /usr/src")
    else:
        tracked = [line for line in tree.changed if not line.startswith("??")]
        if tracked:
            raise SourceFailed(
                f"{src.name}: /usr/src has local changes ({'; '.join(tracked[:5])}); commit or "
                "discard them (git -C /usr/src stash) so the reconciler can check out "
                f"{rev[:12]}"
            )
    out = conn.run(
        ["git", "-C", "/usr/src", "fetch", "--quiet", config.source.url, config.source.branch],
        timeout=GIT_TIMEOUT,
    )
    if not out.ok:
        raise SourceFailed(
            f"{src.name}: git fetch {config.source.url} {config.source.branch} "
            f"failed: {out.stderr.strip()}"
        )
    out = conn.run(["git", "-C", "/usr/src", "checkout", "--quiet", "--detach", rev], timeout=600)
    if not out.ok:
        raise SourceFailed(
            f"{src.name}: git checkout {rev[:12]} failed: {out.stderr.strip()} "
            f"(is the revision on {config.source.branch}?)"
        )
    done.append(f"/usr/src checked out at {rev[:12]}")
    return done


def kernel_configs(ctx: Context, arch: str, idents: list[str], facts: HostFacts) -> list[str]:
    """The config repo's kernels/<IDENT> files in /usr/src/sys/<arch>/conf/."""
    config = ctx.config
    present = facts.kernel_configs_for(arch)
    contents = present.contents if present else {}
    done = []
    for ident in idents:
        kernel = config.kernel(ident)
        if kernel is None or contents.get(ident) == kernel.text:
            continue
        path = f"{SRC}/sys/{arch}/conf/{ident}"
        ctx.conn(config.src).write_file(path, kernel.text)
        done.append(f"wrote {path}")
    return done


def _merge_file(conn: Connection, path: str, lines: str) -> bool:
    current = conn.read_file(path) or ""
    wanted = merge_block(current, lines)
    if wanted == current:
        return False
    conn.write_file(path, wanted)
    return True


def exports(ctx: Context, server: Host, facts: HostFacts) -> list[str]:
    """/etc/exports on an NFS server as the plan wants it, then mountd told about it."""
    lines = wanted_exports(ctx.config, server, facts)
    done: list[str] = []
    if lines:
        conn = ctx.conn(server)
        if not _merge_file(conn, "/etc/exports", lines):
            return done
        conn.run(
            ["sysrc", "rpcbind_enable=YES", "nfs_server_enable=YES", "mountd_enable=YES"],
            timeout=60,
        )
        reload = conn.run(["service", "mountd", "reload"], timeout=120)
        if not reload.ok:
            conn.run(["service", "nfsd", "start"], timeout=120)
        done.append("/etc/exports updated, mountd reloaded")
    return done


def mounts(ctx: Context, host: Host, facts: HostFacts) -> list[str]:
    """fstab lines for /usr/src, /usr/obj (and ports) on a client, and mounted there."""
    lines = render.fstab(ctx.config, host)
    conn = ctx.conn(host)
    done = []
    if _merge_file(conn, "/etc/fstab", lines):
        conn.run(["sysrc", "nfs_client_enable=YES"], timeout=60)
        done.append("/etc/fstab updated")
    for line in lines.splitlines():
        device, mountpoint, _fstype, options = line.split()[:4]
        current = facts.mounts.at(mountpoint) if facts.mounts else None
        if current is not None and current.device == device and current.fstype == "nfs":
            continue
        if current is not None and current.fstype == "nfs":
            conn.run(["umount", mountpoint], timeout=120)
        conn.run(["mkdir", "-p", mountpoint], timeout=60)
        # fstab has bg (a boot must not wait for the server); here the answer is
        # wanted now: in the foreground, and one try (mount_nfs retries "remote"
        # errors, a refused export included, for ever by default).
        now = [o for o in options.split(",") if o not in ("bg", "bgnow", "fg")]
        now = [o for o in now if not o.startswith("retrycnt=")] + ["retrycnt=1"]
        out = conn.run(["mount", "-t", "nfs", "-o", ",".join(now), device, mountpoint], timeout=300)
        if not out.ok:
            raise SourceFailed(
                f"{host.name}: mount {device} {mountpoint} failed: "
                f"{(out.stderr or out.stdout).strip()}"
            )
        done.append(f"mounted {device} on {mountpoint}")
    return done


def _failed(w: HostRun, step: Step, exc: Exception) -> StepResult:
    message = str(exc)
    w.record(message, LedgerOutcome.FAILURE, step.kind)
    return StepResult(HostOutcome.FAILURE, message)


def checkout_source(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    try:
        done = checkout(w.run.ctx, facts)
    except SourceFailed as exc:
        return _failed(w, step, exc)
    w.record("; ".join(done) or "checked out", LedgerOutcome.SUCCESS, step.kind)
    return StepResult.done()


def copy_kernel_configs(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    arch, idents = str(step.detail["arch"]), [str(i) for i in step.detail["kernels"]]
    done = kernel_configs(w.run.ctx, arch, idents, facts)
    w.record("; ".join(done) or "kernel configs in place", LedgerOutcome.SUCCESS, step.kind)
    return StepResult.done()


def export_nfs(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    done = exports(w.run.ctx, w.host, facts)
    w.record("; ".join(done) or "exports in place", LedgerOutcome.SUCCESS, step.kind)
    return StepResult.done()


def mount_nfs(w: HostRun, step: Step, facts: HostFacts) -> StepResult:
    try:
        done = mounts(w.run.ctx, w.host, facts)
    except SourceFailed as exc:
        return _failed(w, step, exc)
    w.record("; ".join(done) or "mounts in place", LedgerOutcome.SUCCESS, step.kind)
    return StepResult.done()
