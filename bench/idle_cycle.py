"""The daemon's idle cycle over N in-sync hosts: persistent connections vs one per cycle.

    .venv/bin/python bench/idle_cycle.py [--hosts 50 200] [--cycles 3]
                                         [--pyinfra BIN] [--ansible BIN]

For each N: a simulated fleet of N hosts, adopted with ``reconciler init``
and brought in sync with one ``apply`` (tests/scale/insync.py), so every
cycle is a drift check that finds nothing to do. Then, side by side:

1. **persistent**: ``converge(..., pool=P)`` with one pool kept across cycles
   (what ``reconciler run`` does), after one warm-up cycle that connects;
2. **fresh**: ``converge(...)`` without a pool: a key exchange and a login per
   host per cycle (what every poll did before);
3. **handshake**: N connections opened and closed, nothing run (the cost the
   persistent pool saves), with the CPU the hosts' sshd spent on them (read from
   each host's sshd, the namespace's init, which reaps the per-login processes);
4. **transport only**: one ``true`` per host per cycle over each kind of
   connection: the connection's own cost without the probe's commands. The
   simulated FreeBSD commands are Python programs (about 70 ms of CPU each, a
   dozen per probe, on the controller's own two cores), so on this machine they,
   not SSH, set the pace of a full cycle; a real host answers the probe in
   milliseconds on its own CPU, which is what this row stands in for;
5. optionally the same batched probe script (the exact ``sh -c`` line the
   reconciler sends a production host) run on every host by pyinfra
   (``pyinfra INVENTORY exec``) and by Ansible (``ansible -m raw``), each a
   fresh run per cycle, as a cron-driven ``pyinfra``/``ansible`` check would be;
   then the same with ``true`` for the script, beside row 4.

Printed per N: wall seconds per cycle, the reconciler process's CPU (user +
system, its git children included) per host per cycle, SSH logins counted by
the hosts' sshd per cycle, round trips (commands) per host per cycle, and
the ratios. Not a test: the simulated hosts share this machine's CPUs with
the controller, so absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.facts.connect import fleet_pool
from reconciler.facts.observe import probes_for
from reconciler.facts.probe import batch_command, new_nonce
from reconciler.ledger import Ledger
from reconciler.rollout.engine import converge
from reconciler.settings import Settings
from reconciler.sim.fleet import SimFleet
from reconciler.transport import ssh
from reconciler.transport.command import quote
from reconciler.transport.pool import ConnectionPool
from tests.scale.insync import in_sync_fleet


def cpu() -> float:
    """CPU seconds of this process and its finished children (git), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Commands:
    """Counts Connection.run calls per host (round trips), by wrapping the method."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self._run = ssh.Connection.run

    def __enter__(self) -> Commands:
        original, count = self._run, self.count

        def run(conn: ssh.Connection, *args: object, **kwargs: object) -> ssh.Result:
            count[conn.host.name] += 1
            return original(conn, *args, **kwargs)  # type: ignore[arg-type]

        ssh.Connection.run = run  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        ssh.Connection.run = self._run  # type: ignore[method-assign]


def sshd_cpu(fleet: SimFleet) -> float:
    """CPU seconds the hosts' sshd listeners and the login processes they reaped have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for host in fleet.hosts:
        pid = fleet.state(host).get("ns_pid")
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(v) for v in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def settle(fleet: SimFleet, timeout: float = 60.0, quiet: int = 3) -> None:
    """Wait until the logins of the last row have ended and been reaped (sshd CPU stops moving).

    ``quiet`` seconds without a change: under a heavy load one still second
    seemed once not to be enough (it read 1 ms a login, about 20 in other runs).
    """
    deadline = time.monotonic() + timeout
    last, still = sshd_cpu(fleet), 0
    while time.monotonic() < deadline and still < quiet:
        time.sleep(1.0)
        now = sshd_cpu(fleet)
        still = still + 1 if now == last else 0
        last = now


def measure(
    label: str, n: int, cycles: int, fleet: SimFleet, once: Callable[[], object]
) -> dict[str, float]:
    settle(fleet)
    logins0 = sum(fleet.accepts(h) for h in fleet.hosts)
    server0 = sshd_cpu(fleet)
    with Commands() as commands:
        c0, t0 = cpu(), time.perf_counter()
        for _ in range(cycles):
            once()
        wall, spent = time.perf_counter() - t0, cpu() - c0
    settle(fleet)  # the hosts' side of closed logins is counted once they are reaped
    logins = sum(fleet.accepts(h) for h in fleet.hosts) - logins0
    row = {
        "wall": wall / cycles,
        "cpu_ms_per_host": 1000 * spent / cycles / n,
        "sshd_ms_per_host": 1000 * (sshd_cpu(fleet) - server0) / cycles / n,
        "logins": logins / cycles,
        "commands_per_host": sum(commands.count.values()) / cycles / n,
    }
    print(
        f"  {label:<36} {row['wall']:7.2f} s/cycle {row['cpu_ms_per_host']:6.2f} ms CPU/host "
        f"{row['logins']:5.0f} logins/cycle {row['commands_per_host']:4.1f} commands/host",
        flush=True,
    )
    return row


def each(pool: ConnectionPool, config: Config, command: str) -> None:
    """``command`` on every host, 16 at a time (as observe goes)."""
    with ThreadPoolExecutor(16) as workers:
        list(workers.map(lambda h: pool.get(h.name).run([command]), config.hosts))


def probe_line(config: Config) -> str:
    """The batched probe script the reconciler sends a production host, as one shell line."""
    host = config.buildsets[0].production_hosts[-1]
    return quote(batch_command(probes_for(config, host), new_nonce()))


def pyinfra_cycle(binary: str, fleet: SimFleet, line: str, work: Path) -> Callable[[], object]:
    inventory = work / "inventory.py"
    hosts = ", ".join(
        f"({fleet.address(h)!r}, {{'ssh_port': {fleet.port(h)}, 'ssh_user': 'root', "
        f"'ssh_key': {str(fleet.client_key)!r}, 'ssh_known_hosts_file': "
        f"{str(fleet.known_hosts)!r}, 'ssh_strict_host_key_checking': 'yes'}})"
        for h in fleet.hosts
    )
    inventory.write_text(f"hosts = [{hosts}]\n")
    argv = [binary, "-y", "--parallel", "16", str(inventory), "exec", "--", line]

    def once() -> object:
        return subprocess.run(argv, capture_output=True, check=True, cwd=work, timeout=3600)

    return once


def ansible_cycle(binary: str, fleet: SimFleet, line: str, work: Path) -> Callable[[], object]:
    inventory = work / "hosts.ini"
    inventory.write_text(
        "[fleet]\n"
        + "".join(
            f"{h} ansible_host={fleet.address(h)} ansible_port={fleet.port(h)}\n"
            for h in fleet.hosts
        )
        + f"[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file={fleet.client_key}\n"
        f"ansible_ssh_common_args='-o UserKnownHostsFile={fleet.known_hosts} "
        "-o StrictHostKeyChecking=yes'\n"
    )
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_FORKS": "16"}
    argv = [binary, "-i", str(inventory), "fleet", "-m", "raw", "-a", line]

    def once() -> object:
        return subprocess.run(argv, capture_output=True, check=True, env=env, timeout=3600)

    return once


def bench(n: int, cycles: int, tools: dict[str, str]) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix=f"bench-idle-{n}-") as tmp:
        base = Path(tmp)
        started = time.monotonic()
        fleet, repo = in_sync_fleet(base, n, batch=20)
        print(f"N={n}: fleet up, adopted and in sync in {time.monotonic() - started:.0f} s")
        try:
            config = load_config(repo, "HEAD")
            settings = Settings(repo=str(repo), ssh_key=str(fleet.client_key), parallel=16)
            ledger = Ledger(repo)
            rows: dict[str, dict[str, float]] = {}
            with fleet_pool(config, settings, max_idle=600.0) as pool:
                report = converge(config, settings=settings, ledger=ledger, pool=pool)
                assert report.converged and "in sync" in report.summary[0], report.summary
                rows["persistent"] = measure(
                    "persistent pool (reconciler run)", n, cycles, fleet,
                    lambda: converge(config, settings=settings, ledger=ledger, pool=pool),
                )  # fmt: skip
            rows["fresh"] = measure(
                "fresh connections each cycle", n, cycles, fleet,
                lambda: converge(config, settings=settings, ledger=ledger),
            )  # fmt: skip

            def handshakes() -> None:
                with fleet_pool(config, settings) as fresh:
                    for host in config.hosts:
                        fresh.get(host.name)

            rows["handshake"] = measure("handshake only (N logins)", n, 1, fleet, handshakes)
            print(
                f"  {'':36} the hosts' sshd: {rows['handshake']['sshd_ms_per_host']:.1f} ms CPU "
                "per login (key exchange, login, its process)"
            )
            pool = fleet_pool(config, settings, max_idle=600.0)
            with pool:
                each(pool, config, "true")  # connect once
                rows["true-persistent"] = measure(
                    "transport only, persistent", n, cycles, fleet,
                    lambda: each(pool, config, "true"),
                )  # fmt: skip

            def fresh_true() -> None:
                with fleet_pool(config, settings) as fresh:
                    each(fresh, config, "true")

            rows["true-fresh"] = measure("transport only, fresh", n, cycles, fleet, fresh_true)
            line = probe_line(config)
            for tool, binary in tools.items():
                cycle = (pyinfra_cycle if tool == "pyinfra" else ansible_cycle)(
                    binary, fleet, line, base
                )
                cycle()  # warm-up (imports, caches)
                rows[tool] = measure(f"{tool}, same probe script", n, cycles, fleet, cycle)
                # The tool's own CPU is in RUSAGE_CHILDREN: counted above as "CPU/host".
                bare = (pyinfra_cycle if tool == "pyinfra" else ansible_cycle)(
                    binary, fleet, "true", base
                )
                rows[f"{tool}-true"] = measure(f"{tool}, transport only", n, cycles, fleet, bare)
        finally:
            fleet.down()
    p, f, h = rows["persistent"], rows["fresh"], rows["handshake"]
    tp, tf = rows["true-persistent"], rows["true-fresh"]
    both = h["cpu_ms_per_host"] + h["sshd_ms_per_host"]
    print(f"  fresh / persistent wall, full probe:      {f['wall'] / p['wall']:5.2f}x (goal 1.5x)")
    print(f"  fresh / persistent wall, transport only:  {tf['wall'] / tp['wall']:5.2f}x")
    print(
        f"  handshake / persistent cycle, controller CPU per host: "
        f"{h['cpu_ms_per_host'] / p['cpu_ms_per_host']:5.2f}x; "
        f"counting the host's sshd too: {both / p['cpu_ms_per_host']:5.1f}x (goal >= 10x)"
    )
    for tool in tools:
        print(
            f"  {tool} / persistent wall per cycle:  {rows[tool]['wall'] / p['wall']:5.2f}x; "
            f"transport only: {rows[f'{tool}-true']['wall'] / tp['wall']:5.2f}x (goal 1.5x)"
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--pyinfra", help="a pyinfra executable (default: on PATH, if any)")
    parser.add_argument("--ansible", help="an ansible executable (default: on PATH, if any)")
    args = parser.parse_args(argv)
    tools = {}
    for tool, given in (("pyinfra", args.pyinfra), ("ansible", args.ansible)):
        found = given or shutil.which(tool)
        if found:
            tools[tool] = found
        else:
            print(f"({tool} not installed: not compared)")
    for n in args.hosts:
        bench(n, args.cycles, tools)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
