"""`reconciler run` checks its setup before it touches anything, and reads failures from the ledger.

Each setup problem is one line on stderr and exit 1, with no clone made and
no ledger commit anywhere. A fresh work_dir knows nothing of earlier runs,
but the ledger does: a generation it records as failed is not retried.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from reconciler.daemon.mirror import clone_dir, resolve_origin
from reconciler.gitutil import git
from reconciler.ledger import Ledger
from reconciler.sim.example import copy_example_repo
from reconciler.statusstore import StatusStore, Update
from reconciler.vocabulary import LedgerOutcome, Stage
from tests.daemon.daemon_helpers import Upstream, client_key

ROOT = Path(__file__).resolve().parents[2]


def daemon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["RECONCILER_CONFIG"] = os.devnull  # no settings file of this machine's
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "run", "--once", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"reconciler: error: {text}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""


def test_each_setup_problem_is_one_line_before_anything_is_touched(tmp_path: Path) -> None:
    up = Upstream.create(tmp_path)
    up.commit({"sets.txt": "lab heal\n"})
    up.push()
    work = tmp_path / "work"
    base = ["--repo", str(up.bare), "--work-dir", str(work)]
    key = client_key(tmp_path)

    one_line_error(daemon(*base), "no SSH client key configured (setting ssh_key or --ssh-key)")
    garbage = tmp_path / "garbage"
    garbage.write_text("this is not a key\n")
    one_line_error(
        daemon(*base, "--ssh-key", str(garbage)), f"SSH key {garbage}: not a private key that"
    )
    one_line_error(
        daemon(*base, "--ssh-key", f"{key}.pub"),
        f"SSH key {key}.pub is a public key; give the private key ({key})",
    )
    one_line_error(daemon(*base, "--ssh-key", str(tmp_path)), f"SSH key {tmp_path} is a directory")
    signers = tmp_path / "allowed_signers"
    one_line_error(
        daemon(
            *base, "--ssh-key", str(key), "--require-signed-commits",
            "--allowed-signers", str(signers),
        ),
        f"allowed_signers {signers}: no such file; require_signed_commits needs it",
    )  # fmt: skip
    one_line_error(
        daemon(
            "--repo", str(tmp_path / "gone.git"), "--work-dir", str(work), "--ssh-key", str(key)
        ),
        f"config repo {tmp_path / 'gone.git'}: no such directory",
    )
    assert not (work / "repos").exists()  # nothing cloned

    # An origin that does not answer: no clone yet, or a clone made earlier.
    url = "ssh://127.0.0.1:1/srv/config.git"  # nothing listens on port 1
    unreachable = ["--repo", url, "--work-dir", str(work), "--ssh-key", str(key)]
    one_line_error(daemon(*unreachable), f"cannot clone config repo {url}")
    earlier = clone_dir(work, resolve_origin(url))
    git(tmp_path, "clone", "-q", "--bare", str(up.bare), str(earlier))
    one_line_error(daemon(*unreachable), f"cannot fetch config repo {url}")
    for repo in (earlier, up.bare):
        assert Ledger(repo).head() is None  # no ledger commit anywhere


def test_a_fresh_work_dir_never_retries_a_generation_the_ledger_records_as_failed(
    tmp_path: Path,
) -> None:
    seed = copy_example_repo(tmp_path / "seed")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    tip = git(origin, "rev-parse", "main")
    config = load_config(origin, tip)
    lab = config.buildset("lab")
    writer = StatusStore(Ledger(origin)).writer("lab", tip, build_id(config, lab))
    writer.record(
        Update(
            subject="lab: build failed on builder: make exited 2",
            stage=Stage.BUILD,
            outcome=LedgerOutcome.FAILURE,
            rollout={"generation": tip, "outcome": "failed", "stage": "build"},
        )
    )
    before = Ledger(origin).head()
    done = daemon(
        "--repo", str(origin), "--work-dir", str(tmp_path / "fresh"),
        "--ssh-key", str(client_key(tmp_path)), "--log-format", "text",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"generation {tip[:12]} failed earlier" in done.stderr
    assert "the ledger records the rollout of build set lab as failed" in done.stderr
    assert "rollout.start" not in done.stderr and "validated" not in done.stderr
    assert Ledger(origin).head() == before  # nothing recorded: no validated, no rollout
