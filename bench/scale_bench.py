"""Many hosts: `sim up --hosts 500`, observe/plan/status on it, a 200-host rollout.

    .venv/bin/python bench/scale_bench.py [--hosts 500] [--rollout 200 | 0] [--batch 20]

Prints, in one run:

1. ``reconciler sim up --hosts N`` (the command a user types): seconds until
   every sshd answers, and memory per simulated host (PSS of its processes:
   ``unshare`` and the sshd that is its namespace's init, plus its share of
   the supervisor) and disk per host;
2. ``reconciler init`` of all N hosts (one build set), then on it: ``observe``
   (in process: wall, controller CPU per host, round trips per host),
   ``plan``, ``status`` and ``status --format json`` (as a user runs them:
   wall and CPU of the process);
3. linearity: the planner's CPU per host at N/5, N/2 and N hosts, from the
   same facts (constant if nothing is quadratic), and the top functions of a
   profile of observe + plan at N;
4. a rollout of a build set of the first R hosts (``reconciler apply`` after a
   source revision bump: one build, R installs, the production stage in
   batches): wall, controller CPU per host, ledger commits per host, and a
   check that each host installed once.

Loopback only: the fleet leases consecutive /24s of 127.0.0.0/8
(reconciler.sim.subnets). Not a test: it takes many minutes on a small machine.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.config.load import load_config
from reconciler.config.model import Config
from reconciler.facts.host import HostFacts
from reconciler.facts.observe import observe
from reconciler.gitutil import git, identity_env
from reconciler.plan import make_plan
from reconciler.settings import Settings
from reconciler.sim import upstream
from reconciler.sim.fleet import SimFleet
from reconciler.sim.subnets import reserve_subnet, subnets_needed
from tests.scale.insync import ROOT, adopt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idle_cycle import Commands, cpu


def run(*args: str, timeout: float = 7200) -> tuple[float, float, str]:
    """``reconciler ARGS`` in its own process: (wall s, its CPU s, stdout); fails unless 0/1."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
        timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode not in (0, 1):
        raise SystemExit(f"reconciler {args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, used, done.stdout


def pss_kib(pid: object) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def memory_per_host(fleet: SimFleet) -> tuple[float, float]:
    """(MiB of PSS per host, MiB of disk per host)."""
    total = 0
    for host in fleet.hosts:
        st = fleet.state(host)
        total += pss_kib(st.get("ns_pid")) + pss_kib(st.get("unshare_pid"))
    total += pss_kib(fleet.supervisor_pid())
    disk = subprocess.run(
        ["du", "-sk", str(fleet.directory)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    n = len(fleet.hosts)
    return total / 1024 / n, int(disk) / 1024 / n


def first(config: Config, count: int) -> Config:
    """``config`` with its one build set cut to its first ``count`` hosts."""
    (bs,) = config.buildsets
    hosts = bs.hosts[:count]
    return dataclasses.replace(config, buildsets=(dataclasses.replace(bs, hosts=hosts),))


def linearity(config: Config, facts: dict[str, HostFacts]) -> None:
    n = len(config.hosts)
    print("planner CPU per host (facts as observed), by fleet size:")
    for count in sorted({max(2, n // 5), max(2, n // 2), n}):
        part = first(config, count)
        names = {h.name for h in part.hosts}
        c0 = cpu()
        for _ in range(5):
            make_plan(part, {k: v for k, v in facts.items() if k in names})
        per = (cpu() - c0) / 5 / count * 1e6
        print(f"  {count:5d} hosts: {per:7.1f} us CPU per host")


def rollout_repo(repo: Path, count: int, batch: int) -> Path:
    """The adopted repo cut to its first ``count`` hosts, production in batches, new revision."""
    (path,) = repo.glob("buildsets/*/buildset.yaml")
    lines = path.read_text().splitlines(keepends=True)
    kept, hosts = [], 0
    for line in lines:
        if re.match(r"^  host\d+: ", line):
            hosts += 1
            if hosts > count:
                continue
        kept.append(line)
    text = re.sub(r"(?m)^  batch: \d+", f"  batch: {batch}", "".join(kept))
    path.write_text(text)
    fleet_yaml = repo / "fleet.yaml"
    newest = upstream.commits()[-1]
    fleet_yaml.write_text(
        re.sub(
            r"(?m)^(\s*revision:\s*)[0-9a-f]{40}",
            rf"\g<1>{newest}",
            fleet_yaml.read_text(),
            count=1,
        )
    )
    git(repo, "commit", "-q", "-am", f"{count} hosts, revision {newest[:12]}", env=identity_env())
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--rollout", type=int, default=200, help="0: no rollout")
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    n = args.hosts
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = Path(tmp)
        subnet = reserve_subnet(count=subnets_needed(n))
        wall, used, _ = run(
            "sim", "up", "--dir", str(base / "fleet"), "--hosts", str(n), "--subnet", subnet,
            "--build-seconds", "5", "--install-seconds", "0.5", "--boot-seconds", "0.5",
        )  # fmt: skip
        fleet = SimFleet.attach(base / "fleet")
        try:
            mem, disk = memory_per_host(fleet)
            print(f"sim up --hosts {n}: {wall:.1f} s ({n / wall:.1f} hosts/s, on {subnet}.0/24 and "
                  f"the {subnets_needed(n) - 1} /24s after it)")  # fmt: skip
            print(f"  memory per simulated host: {mem:.2f} MiB PSS; disk {disk:.2f} MiB")
            t0 = time.perf_counter()
            repo = adopt(fleet, base / "repo", batch=args.batch)
            print(f"reconciler init of {n} hosts: {time.perf_counter() - t0:.1f} s")
            key = ["--ssh-key", str(fleet.client_key)]
            config = load_config(repo, "HEAD")
            settings = Settings(repo=str(repo), ssh_key=str(fleet.client_key))
            profile = cProfile.Profile()
            with Commands() as commands:
                c0, t0 = cpu(), time.perf_counter()
                profile.enable()
                facts = observe(config, settings)
                plan = make_plan(config, facts)
                profile.disable()
                wall, used = time.perf_counter() - t0, cpu() - c0
            down = [h for h, f in facts.items() if not f.reachable]
            print(
                f"observe + plan, {n} hosts: {wall:.1f} s, controller CPU {1000 * used / n:.2f} "
                f"ms/host, {sum(commands.count.values()) / n:.2f} round trips/host, "
                f"{len(down)} unreachable, {sum(len(b.steps) for b in plan.buildsets)} steps"
            )
            for label, extra in (
                ("plan", ()),
                ("status", ()),
                ("status --format json", ("--format", "json")),
            ):
                wall, used, out = run(label.split()[0], str(repo), *extra, *key)
                print(
                    f"reconciler {label:<22} {wall:6.1f} s wall, {used:5.1f} s CPU "
                    f"({1000 * used / n:.1f} ms/host), {len(out.splitlines())} lines"
                )
            linearity(config, facts)
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(8)
            print("profile of observe + plan (this thread), top functions by own time:")
            print("\n".join("  " + line for line in text.getvalue().splitlines()[-10:] if line))

            count = min(args.rollout, n)
            if count == 0:  # --rollout 0: the fleet, observe, plan and status only
                return 0
            rollout_repo(repo, count, args.batch)
            wall, used, _ = run("apply", str(repo), "--yes", *key)
            commits = int(git(repo, "rev-list", "--count", "reconciler/status"))
            installs = [fleet.count(f"host{i}", "installworld") for i in range(1, count + 1)]
            others = sum(fleet.count(f"host{i}", "installworld") for i in range(count + 1, n + 1))
            print(
                f"rollout of a {count}-host build set (batches of {args.batch}): {wall:.0f} s, "
                f"controller CPU {1000 * used / count:.0f} ms/host, {commits / count:.1f} ledger "
                f"commits/host; installs per host min {min(installs)} max {max(installs)}; "
                f"hosts outside the set installed: {others}"
            )
        finally:
            fleet.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
