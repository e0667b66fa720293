"""Stage 1, source: /usr/src at the revision, kernel configs in place, NFS exported and mounted."""

from __future__ import annotations

from reconciler.config import render
from reconciler.config.model import BuildSet, Config, Host
from reconciler.errors import TransportError
from reconciler.facts.host import HostFacts
from reconciler.rollout.context import Context
from reconciler.rollout.files import merge_block
from reconciler.transport.ssh import Connection

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


def kernel_configs(ctx: Context, buildset: BuildSet, facts: HostFacts) -> list[str]:
    """The config repo's kernels/<IDENT> files in /usr/src/sys/<arch>/conf/."""
    config = ctx.config
    present = facts.kernel_configs_for(buildset.arch)
    contents = present.contents if present else {}
    done = []
    for ident in buildset.kernconfs:
        kernel = config.kernel(ident)
        if kernel is None or contents.get(ident) == kernel.text:
            continue
        path = f"/usr/src/sys/{buildset.arch}/conf/{ident}"
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


def exports(ctx: Context, servers: list[Host]) -> list[str]:
    """/etc/exports on the src and build hosts, then mountd told about it."""
    wanted = render.exports(ctx.config)
    done = []
    for server in servers:
        lines = wanted.get(server.name, "")
        if not lines:
            continue
        conn = ctx.conn(server)
        if not _merge_file(conn, "/etc/exports", lines):
            continue
        conn.run(
            ["sysrc", "rpcbind_enable=YES", "nfs_server_enable=YES", "mountd_enable=YES"],
            timeout=60,
        )
        reload = conn.run(["service", "mountd", "reload"], timeout=120)
        if not reload.ok:
            conn.run(["service", "nfsd", "start"], timeout=120)
        done.append(f"{server.name}: /etc/exports updated, mountd reloaded")
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


def run_source_stage(ctx: Context, buildset: BuildSet, facts: dict[str, HostFacts]) -> list[str]:
    """Everything stage 1 does for one build set; raises SourceFailed."""
    config: Config = ctx.config
    done: list[str] = []
    src_facts = facts.get(config.src_host)
    try:
        if src_facts is None or not src_facts.reachable:
            raise SourceFailed(
                f"src host {config.src_host} is unreachable: "
                f"{src_facts.error if src_facts else 'not observed'}"
            )
        with ctx.source_lock:  # one checkout for every build set of this run
            if not ctx.source_done:
                done += checkout(ctx, src_facts)
                ctx.source_done = True
            done += kernel_configs(ctx, buildset, src_facts)
            servers = [config.src] + (
                [buildset.build] if buildset.build_host != config.src_host else []
            )
            done += exports(ctx, servers)
        for host in buildset.hosts:
            host_facts = facts.get(host.name)
            if host_facts is None or not host_facts.reachable:
                continue  # its install step will find it unreachable and count it
            done += [f"{host.name}: {what}" for what in mounts(ctx, host, host_facts)]
    except TransportError as exc:
        raise SourceFailed(str(exc)) from exc
    return done
