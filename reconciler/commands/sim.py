"""`reconciler sim`: the simulated FreeBSD fleet (up, down, status, fault).

reconciler sim up --dir DIR (--repo CONFIG_REPO | --hosts N) [--build-seconds S]
                  [--install-seconds S] [--boot-seconds S] [--obj-in-be HOST ...] [--ufs HOST ...]
reconciler sim down --dir DIR
reconciler sim status --dir DIR
reconciler sim fault --dir DIR HOST KIND [--value V] [--clear]
reconciler sim power-cycle --dir DIR HOST
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reconciler.commands import SUMMARIES
from reconciler.errors import SimError, UsageError
from reconciler.sim import state
from reconciler.sim.fleet import SimFleet


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim", help=SUMMARIES["sim"]
    )
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION")
    sub.required = True

    up = sub.add_parser("up", help="start a simulated fleet in DIR")
    up.add_argument("--dir", required=True, type=Path, help="fleet directory (new)")
    which = up.add_mutually_exclusive_group(required=True)
    which.add_argument("--repo", type=Path, help="config repo: one simulated host per host")
    which.add_argument("--hosts", type=int, help="N anonymous hosts host1..hostN on 127.0.0.101+")
    up.add_argument("--subnet", default="127.0.0", help="with --hosts: addresses SUBNET.101+")
    up.add_argument("--build-seconds", type=float, default=3.0)
    up.add_argument("--install-seconds", type=float, default=1.0)
    up.add_argument("--boot-seconds", type=float, default=1.0)
    up.add_argument(
        "--obj-in-be",
        nargs="+",
        default=[],
        metavar="HOST",
        help="hosts whose /usr/obj lives in the boot environment (ZFS default)",
    )
    up.add_argument(
        "--ufs", nargs="+", default=[], metavar="HOST", help="hosts without ZFS (no BEs)"
    )
    up.add_argument(
        "--no-git",
        nargs="+",
        default=[],
        metavar="HOST",
        help="hosts without the git package (kernels they build carry no VCS revision)",
    )
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop the fleet in DIR")
    down.add_argument("--dir", required=True, type=Path)
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="one line per simulated host")
    status.add_argument("--dir", required=True, type=Path)
    status.set_defaults(func=_status)

    fault = sub.add_parser("fault", help="inject or clear a fault on a host")
    fault.add_argument("--dir", required=True, type=Path)
    fault.add_argument("host")
    fault.add_argument("kind", choices=state.FAULT_KINDS)
    fault.add_argument("--value", help="e.g. the factor for 'slow'")
    fault.add_argument("--clear", action="store_true")
    fault.set_defaults(func=_fault)

    cycle = sub.add_parser(
        "power-cycle", help="press a host's reset button (a hung host boots again)"
    )
    cycle.add_argument("--dir", required=True, type=Path)
    cycle.add_argument("host")
    cycle.set_defaults(func=_power_cycle)
    parser.set_defaults(func=_missing)


def _missing(args: argparse.Namespace) -> int:
    raise UsageError("reconciler sim: give an action (up, down, status, fault, power-cycle)")


def _up(args: argparse.Namespace) -> int:
    fleet = SimFleet.up(
        args.dir,
        repo=args.repo,
        hosts=args.hosts,
        build_seconds=args.build_seconds,
        install_seconds=args.install_seconds,
        boot_seconds=args.boot_seconds,
        obj_in_be=args.obj_in_be,
        ufs=args.ufs,
        no_git=args.no_git,
        subnet=args.subnet,
        detached=True,
    )
    with_bes = [h for h in fleet.hosts if not fleet.spec(h).ufs]
    first = with_bes[0] if with_bes else fleet.hosts[0]
    print(f"{len(fleet.hosts)} simulated host(s) up in {fleet.directory}")
    print(f"  ssh -F {fleet.ssh_config} {first} 'freebsd-version -ku; uname -i; bectl list -H'")
    print(f"  reconciler sim status --dir {fleet.directory}")
    print(f"  reconciler sim down --dir {fleet.directory}")
    return 0


def _attach(directory: Path) -> SimFleet:
    if not (directory / "fleet.json").exists():
        raise SimError(f"{directory}: no simulated fleet here")
    return SimFleet.attach(directory)


def _down(args: argparse.Namespace) -> int:
    fleet = _attach(args.dir)
    fleet.down()
    print(f"simulated fleet in {fleet.directory} is down")
    return 0


def status_table(fleet: SimFleet) -> str:
    rows = [("HOST", "ADDRESS", "POWER", "BE", "KERNEL", "REVISION", "FAULTS")]
    running = fleet.running()
    for host in fleet.hosts:
        st = fleet.state(host)
        kern = st.get("running_kernel") or {}
        faults = ",".join(
            k if v is True else f"{k}={v}" for k, v in sorted(fleet.faults(host).items())
        )
        rows.append(
            (
                host,
                f"{fleet.address(host)}:{fleet.port(host)}",
                str(st.get("power")) if running else "off",
                st.get("booted_be") or "-",
                kern.get("ident", "?"),
                str(kern.get("revision", ""))[:12] or "?",
                faults or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _status(args: argparse.Namespace) -> int:
    fleet = _attach(args.dir)
    if not fleet.running():
        print(f"(the fleet in {fleet.directory} is not running)")
    print(status_table(fleet))
    return 0


def _fault(args: argparse.Namespace) -> int:
    fleet = _attach(args.dir)
    if args.clear:
        fleet.clear_fault(args.host, args.kind)
        print(f"{args.host}: {args.kind} cleared")
    else:
        fleet.set_fault(args.host, args.kind, args.value)
        print(f"{args.host}: {args.kind} set" + (f" ({args.value})" if args.value else ""))
    return 0


def _power_cycle(args: argparse.Namespace) -> int:
    fleet = _attach(args.dir)
    fleet.power_cycle(args.host)
    print(f"{args.host}: power-cycled")
    return 0
