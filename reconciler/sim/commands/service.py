"""service(8) with rc.subr(8) behaviour for the services the reconciler touches.

Known rc.d scripts: sshd, nfsd, mountd, rpcbind, nfsclient, lockd, statd,
cron, syslogd. A service runs when it was started since boot, or when its
rc.conf knob was YES at boot (the supervisor records those) and it was not
stopped since; start/stop are kept in /run, so a reboot resets them.
``nfsd start`` starts rpcbind and mountd first (rc.d/nfsd's force_depend).
``status``: ``NAME is running as pid N.`` or
``NAME is not running.`` (exit 1). Without the knob, ``start``/``status``/...
print rc.subr's ``Cannot 'start' NAME. Set NAME_enable to YES in
/etc/rc.conf or use 'onestart' instead of 'start'.`` and exit 1. The
``health-fails`` fault (value: a service name, or every service when bare)
makes ``status`` report not running. Starting mountd, or reloading it (rc.d/mountd's
reload is a SIGHUP), makes it read /etc/exports again (reconciler/sim/exports.py):
lines it refuses go to /var/log/messages, and the command still exits 0.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

from reconciler.sim.commands.host import Host
from reconciler.sim.commands.sysrc import rc_value

RCVARS = {
    "sshd": "sshd_enable",
    "nfsd": "nfs_server_enable",
    "mountd": "mountd_enable",
    "rpcbind": "rpcbind_enable",
    "nfsclient": "nfs_client_enable",
    "lockd": "rpc_lockd_enable",
    "statd": "rpc_statd_enable",
    "cron": "cron_enable",
    "syslogd": "syslogd_enable",
}
STATE = Path("/run/freebsd-sim.services")
DEPENDS = {"nfsd": ("rpcbind", "mountd"), "mountd": ("rpcbind",)}


def boot_services(root: Path) -> list[str]:
    """Services rc(8) starts at boot for the system whose root is ``root``."""
    return [name for name in RCVARS if _enabled(name, root)]


def _load() -> dict[str, bool]:
    try:
        data = json.loads(STATE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data) if isinstance(data, dict) else {}


def _save(data: dict[str, bool]) -> None:
    STATE.write_text(json.dumps(data) + "\n", encoding="utf-8")


def _enabled(name: str, root: Path = Path("/")) -> bool:
    value = rc_value(RCVARS[name], root) or "NO"
    return value.upper() in ("YES", "TRUE", "ON", "1")


def _pid(name: str) -> int:
    return 1 if name == "sshd" else 100 + zlib.crc32(name.encode()) % 900


def _running(host: Host, name: str) -> bool:
    fault = host.fault("health-fails")
    if fault is not None and (fault is True or fault == name):
        return False
    if name == "sshd":
        return True
    started = _load().get(name)
    if started is not None:
        return started
    # Not touched since boot: running if its knob was YES when the host booted.
    return name in (host.state().get("boot_services") or [])


def mountd_reload(host: Host) -> None:
    """mountd (re)reads /etc/exports: what clients may mount from now on."""
    from reconciler.sim import exports  # late: most service calls never touch NFS

    st = host.state()
    root = host.layout.be(host.name, st.get("booted_be") or "default")
    exports.reload(host.dir, root, host.name, {s.name: s.address for s in host.fleet()[0]})


def run(host: Host, prog: str, argv: list[str]) -> int:
    args = [a for a in argv if a not in ("-q", "-v")]
    if args[:1] in (["-e"], ["-l"]):
        names = sorted(RCVARS) if args[0] == "-l" else [n for n in sorted(RCVARS) if _enabled(n)]
        print("\n".join(f"/etc/rc.d/{n}" if args[0] == "-e" else n for n in names))
        return 0
    if len(args) < 2:
        print(
            "usage: service [-j <jail name or id>] -e\n"
            "       service [-j <jail name or id>] -R\n"
            "       service [-j <jail name or id>] [-v] -l | -r\n"
            "       service [-j <jail name or id>] [-v] [-E var=value] <rc.d script> "
            "start|stop|etc.",
            file=sys.stderr,
        )
        return 1
    name, verb = args[0], args[1]
    if name not in RCVARS:
        print(
            f"{name} does not exist in /etc/rc.d or the local startup\n"
            "directories (/usr/local/etc/rc.d), or is not executable",
            file=sys.stderr,
        )
        return 1
    one = verb.startswith("one")
    base = verb[3:] if one else verb
    if base not in ("start", "stop", "restart", "status", "reload", "enabled", "rcvar"):
        print(f"/etc/rc.d/{name}: unknown directive '{verb}'.", file=sys.stderr)
        return 1
    if base == "enabled":
        return 0 if _enabled(name) else 1
    if base == "rcvar":
        print(f'# {name}\n#\n{RCVARS[name]}="{rc_value(RCVARS[name]) or "NO"}"')
        return 0
    if not one and not _enabled(name):
        print(
            f"Cannot '{base}' {name}. Set {RCVARS[name]} to YES in /etc/rc.conf or use "
            f"'one{base}' instead of '{base}'.",
            file=sys.stderr,
        )
        return 1
    running = _running(host, name)
    services = _load()
    if base == "status":
        if running:
            print(f"{name} is running as pid {_pid(name)}.")
            return 0
        print(f"{name} is not running.")
        return 1
    if base == "start":
        if running:
            print(f"{name} already running?   (pid={_pid(name)}).", file=sys.stderr)
            return 1
        # rc.d/nfsd's precmd force_depends on rpcbind and mountd.
        for dependency in DEPENDS.get(name, ()):
            if not _running(host, dependency):
                print(f"Starting {dependency}.")
                services[dependency] = True
        print(f"Starting {name}.")
        services[name] = True
    elif base == "stop":
        if not running:
            print(f"{name} not running? (check /var/run/{name}.pid).", file=sys.stderr)
            return 1
        print(f"Stopping {name}.\nWaiting for PIDS: {_pid(name)}.")
        services[name] = False
    elif base == "restart":
        if running:
            print(f"Stopping {name}.\nWaiting for PIDS: {_pid(name)}.")
        print(f"Starting {name}.")
        services[name] = True
    elif base == "reload":
        if not running:
            print(f"{name} not running? (check /var/run/{name}.pid).", file=sys.stderr)
            return 1
        host.count(f"reload-{name}")
    _save(services)
    if name == "mountd" and base == "stop":
        from reconciler.sim import exports

        exports.clear(host.dir)
    elif (name == "mountd" and base in ("start", "restart", "reload")) or (
        name == "nfsd" and base in ("start", "restart") and services.get("mountd")
    ):
        mountd_reload(host)
    return 0
