"""Build once, install many: a scripted series of config changes over a 6-host build set.

Prints, measured side by side in one run:
- buildworld runs against distinct build ids (must be equal: same id, no rebuild)
  and against what building on every host would cost (the handbook's point);
- poudriere bulk runs against distinct package set ids (must be equal too: lab
  lists packages, docs/packages.md) and against building them on every host;
- the reconciler's own time: CPU seconds of the reconciler process (and the git
  it runs) against the rollout's wall time, the rest being the simulated hosts'
  build, install, boot and soak time and their command start-up.

Run as root from a checkout: `.venv/bin/python bench/rollout_bench.py`.
"""

from __future__ import annotations

import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.config.pkgsetid import package_set_id
from reconciler.gitutil import git, identity_env
from reconciler.ledger import Ledger
from reconciler.rollout.engine import converge
from reconciler.settings import Settings
from reconciler.sim import hostkeys, portstree, upstream
from reconciler.sim.example import add_packages, copy_example_repo
from reconciler.sim.fleet import SimFleet

SUBNET = "127.0.250"
EXTRA = {"web3": 15, "web4": 16}


def six_host_repo(base: Path) -> Path:
    repo = copy_example_repo(base / "repo", subnet=SUBNET)
    path = repo / "buildsets/lab/buildset.yaml"
    text = path.read_text()
    lines = "".join(
        f"  {name}:    {{address: {SUBNET}.{n}, kernconf: WEB}}\n" for name, n in EXTRA.items()
    )
    text = re.sub(r"(  web2: .*\n)", lambda m: m.group(1) + lines, text)
    text = re.sub(r"soak: \d+", "soak: 1", text)
    # Room for every build id of the series: returning to one must rebuild nothing.
    # "revision back" is older than what the hosts run: a downgrade preflight refuses
    # unless allowed (without it that change is never built and the ratios read < 1).
    text = re.sub(
        r"(reboot_timeout: \d+\n)", r"\1  keep_builds: 8\n  allow_downgrade: true\n", text
    )
    path.write_text(text)
    with (repo / "known_hosts").open("a") as known:
        for name, n in EXTRA.items():
            known.write(hostkeys.known_hosts_line(name, f"{SUBNET}.{n}") + "\n")
    # One build set only: drop db (and its hosts) from this benchmark.
    git(repo, "rm", "-q", "-r", "buildsets/db")
    add_packages(repo, db=False)
    with path.open("a") as handle:
        handle.write("  keep: 16\n")  # room for every package set of the series, as keep_builds
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Six hosts in lab, with packages", env=identity_env())
    return repo


def change(repo: Path, path: str, pattern: str, repl: str, message: str) -> None:
    file = repo / path
    file.write_text(re.sub(pattern, repl, file.read_text(), count=1, flags=re.M))
    git(repo, "commit", "-q", "-am", message, env=identity_env())


def main() -> int:
    commits = upstream.commits()
    newest = commits[-1]
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        base = Path(tmp)
        repo = six_host_repo(base)
        original = load_config(repo, "HEAD").source.revision
        ports = load_config(repo, "HEAD").ports
        assert ports is not None and ports.revision is not None
        ports_pin = ports.revision
        steps = [
            ("src.conf: WITHOUT_GAMES", "buildsets/lab/src.conf", r"\Z", "WITHOUT_GAMES=yes\n"),
            (
                "health check added",
                "buildsets/lab/buildset.yaml",
                r"(health_checks:\n)",
                r"\1    - test -s /var/db/reconciler/installed\n",
            ),
            ("batch 3", "buildsets/lab/buildset.yaml", r"batch: \d+", "batch: 3"),
            ("src.conf: games back", "buildsets/lab/src.conf", r"WITHOUT_GAMES=yes\n", ""),
            (
                "ports wrkdirprefix",
                "buildsets/lab/buildset.yaml",
                r"wrkdirprefix: \S+",
                "wrkdirprefix: /var/tmp/ports",
            ),
            ("revision bump", "fleet.yaml", r"(revision:\s*)[0-9a-f]{40}", rf"\g<1>{newest}"),
            ("make.conf: CFLAGS", "buildsets/lab/make.conf", r"\Z", "CFLAGS+=-pipe\n"),
            ("revision back", "fleet.yaml", r"(revision:\s*)[0-9a-f]{40}", rf"\g<1>{original}"),
            ("make.conf: CFLAGS gone", "buildsets/lab/make.conf", r"CFLAGS\+=-pipe\n", ""),
            ("revision bump again", "fleet.yaml", r"(revision:\s*)[0-9a-f]{40}", rf"\g<1>{newest}"),
            ("ports revision bump", "fleet.yaml", rf"{ports_pin}", portstree.COMMITS[2]),
            ("ports revision back", "fleet.yaml", portstree.COMMITS[2], ports_pin),
        ]
        timings = {"build_seconds": 2.0, "install_seconds": 0.5, "boot_seconds": 0.5}
        fleet = SimFleet.up(base / "fleet", repo=repo, **timings)
        try:
            settings = Settings(repo=str(repo), ssh_key=str(fleet.client_key))
            ids: list[str] = []
            pkgsets: list[str] = []
            wall = cpu = 0.0
            for label, path, pattern, repl in steps:
                change(repo, path, pattern, repl, label)
                config = load_config(repo, "HEAD")
                bid = build_id(config, "lab")
                if bid not in ids:
                    ids.append(bid)
                pid = package_set_id(config, "lab") or ""
                if pid not in pkgsets:
                    pkgsets.append(pid)
                before = fleet.count("builder", "buildworld")
                t0 = time.perf_counter()
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                report = converge(config, settings=settings, ledger=Ledger(repo), poll=0.25)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                spent = time.perf_counter() - t0
                own = (
                    r1.ru_utime
                    - r0.ru_utime
                    + r1.ru_stime
                    - r0.ru_stime
                    + c1.ru_utime
                    - c0.ru_utime
                    + c1.ru_stime
                    - c0.ru_stime
                )
                wall += spent
                cpu += own
                built = fleet.count("builder", "buildworld") - before
                print(
                    f"{label:24} build {bid[:12]} built={built} pkgset {pid[:12]} "
                    f"converged={report.converged} "
                    f"wall={spent:5.1f}s reconciler-cpu={own:4.1f}s"
                )
                for result in report.results:
                    if result.outcome not in ("success", "healed"):
                        print(f"    {result.host}: {result.outcome}: {result.message}")
            hosts = len(fleet.hosts)
            buildworlds = fleet.count("builder", "buildworld")
            print()
            print(
                f"changes: {len(steps)}, distinct build ids: {len(ids)}, "
                f"buildworld runs: {buildworlds} (ratio {buildworlds / len(ids):.2f}, must be 1.00)"
            )
            naive = len(steps) * hosts
            print(
                f"building on every host for every change would be {naive} buildworlds: "
                f"{buildworlds / naive:.3f} of that ({naive / max(1, buildworlds):.1f}x fewer)"
            )
            bulks = fleet.count("builder", "poudriere-bulk")
            print(
                f"distinct package set ids: {len(pkgsets)}, poudriere bulk runs: {bulks} "
                f"(ratio {bulks / len(pkgsets):.2f}, must be 1.00); building packages on every "
                f"host for every change would be {naive} bulk runs ({naive / max(1, bulks):.1f}x "
                "fewer)"
            )
            print(
                f"reconciler's own CPU time: {cpu:.1f}s of {wall:.1f}s wall "
                f"({100 * cpu / wall:.1f}%; goal < 5%)"
            )
        finally:
            fleet.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
