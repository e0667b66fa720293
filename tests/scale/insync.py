"""A simulated fleet of N anonymous hosts, adopted and brought in sync as a user would.

``reconciler init`` adopts the running hosts into a new config repo (one build
set, host1 the src and build host); one ``reconciler apply`` adds the NFS
exports and mounts and writes make.conf/src.conf (no build, no reboot).
After that every host is in sync: a drift check changes nothing and writes
nothing. Used by tests/scale and by bench/ (the same fleet, larger).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from reconciler.gitutil import git, identity_env
from reconciler.sim import hostkeys
from reconciler.sim.fleet import SimFleet
from reconciler.sim.subnets import reserve_subnet, subnets_needed

ROOT = Path(__file__).resolve().parents[2]
FAST = {"build_seconds": 0.6, "install_seconds": 0.3, "boot_seconds": 0.3}


def reconciler(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` as a user runs it; fails loudly unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if done.returncode != 0:
        raise AssertionError(f"reconciler {args[0]}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done


def fingerprint(host: str, directory: Path) -> str:
    """The host key's SHA256 fingerprint as ssh-keygen prints it (not the reconciler's code)."""
    public = directory / f"{host}.pub"
    public.write_text(hostkeys.public_key_line(host) + "\n")
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


def adopt(fleet: SimFleet, repo: Path, *, batch: int = 10) -> Path:
    """``reconciler init`` the whole fleet into ``repo``; production in batches of ``batch``."""
    keys = repo.parent / "host-keys"
    keys.mkdir(parents=True, exist_ok=True)
    args: list[str] = []
    for host in fleet.hosts:
        args += ["--host", f"{host}={fleet.address(host)}"]
        args += ["--accept-fingerprint", f"{host}={fingerprint(host, keys)}"]
    reconciler("init", str(repo), *args, "--ssh-key", str(fleet.client_key))
    (path,) = repo.glob("buildsets/*/buildset.yaml")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^rollout:\n", f"rollout:\n  batch: {batch}\n", text)
    path.write_text(text, encoding="utf-8")
    git(repo, "commit", "-q", "-am", f"production in batches of {batch}", env=identity_env())
    return repo


def in_sync_fleet(
    base: Path, hosts: int, *, batch: int = 10, **timings: Any
) -> tuple[SimFleet, Path]:
    """A running fleet of ``hosts`` hosts and a config repo they are all in sync with."""
    subnet = reserve_subnet(count=subnets_needed(hosts))
    fleet = SimFleet.up(base / "fleet", hosts=hosts, subnet=subnet, **(FAST | timings))
    try:
        repo = adopt(fleet, base / "repo", batch=batch)
        reconciler("apply", str(repo), "--yes", "--ssh-key", str(fleet.client_key), timeout=3600)
    except BaseException:
        fleet.down()
        raise
    return fleet, repo
