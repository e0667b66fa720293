"""The package as a user gets it: built, installed into a fresh venv outside the checkout, run.

The module's fixture copies this tree's files (tracked and new, as git lists
them) to a scratch directory, builds the sdist and the wheel from the copy with
``python -m build`` (the wheel from the sdist, as a release and a FreeBSD port
build it), and installs the wheel into a new virtual environment with pip
(dependencies from the index, quick from pip's cache).
Nothing of the checkout is on that environment's path, so a file the wheel
lacks fails here as it fails for a user.

The two demo runs (one plain, one ``--keep``) each roll out the example repo
to a simulated fleet, about 40 s; they are started together, on their own
subnets, so the module takes about a minute.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.sim.fleet import SimFleet
from tests.conftest import fresh_subnet
from tests.packaging.tree import ROOT, build, copy_tree

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DEMO_TIMEOUT = 300


@dataclass(frozen=True)
class Installed:
    base: Path
    wheel: Path
    venv: Path

    @property
    def site_packages(self) -> Path:
        found = sorted(self.venv.glob("lib/python3*/site-packages"))
        assert len(found) == 1, found
        return found[0]

    def env(self) -> dict[str, str]:
        """The environment of a user whose PATH starts with the venv (nothing of the checkout)."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def run(
        self, *args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "reconciler"), *args],
            cwd=cwd,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


def _check(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("packaging")
    dist = base / "dist"
    build(copy_tree(base / "tree"), dist)
    (wheel,) = dist.glob("reconciler-*.whl")
    venv = base / "venv"
    _check(
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300
        )
    )
    _check(
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=base,
        )
    )
    return Installed(base=base, wheel=wheel, venv=venv)


def test_version_is_the_one_in_pyproject(installed: Installed) -> None:
    out = _check(installed.run("--version", cwd=installed.base))
    assert out.strip() == f"reconciler {VERSION}"
    assert installed.wheel.name == f"reconciler-{VERSION}-py3-none-any.whl"
    python = str(installed.venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import reconciler; print(reconciler.__file__)"],
        cwd=installed.base,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.site_packages), where


def test_wheel_carries_the_example_repo_schemas_and_sample(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    example = {
        f"reconciler/example-repo/{p.relative_to(ROOT / 'example-repo')}"
        for p in (ROOT / "example-repo").rglob("*")
        if p.is_file()
    }
    shipped = {n for n in names if n.startswith("reconciler/example-repo/")}
    assert shipped == example
    for schema in (ROOT / "schema").glob("*.json"):
        assert f"reconciler/schema/{schema.name}" in names
    assert "reconciler/reconciler.toml.sample" in names
    # Installed as files, the same bytes as the sources they come from.
    copy = installed.site_packages / "reconciler" / "example-repo" / "fleet.yaml"
    assert copy.read_bytes() == (ROOT / "example-repo" / "fleet.yaml").read_bytes()
    sample = installed.site_packages / "reconciler" / "reconciler.toml.sample"
    assert sample.read_bytes() == (ROOT / "reconciler.toml.sample").read_bytes()


def test_validate_a_copy_of_the_installed_example_repo(installed: Installed) -> None:
    copy = installed.base / "my-fleet"
    shutil.copytree(installed.site_packages / "reconciler" / "example-repo", copy)
    out = _check(installed.run("validate", str(copy), cwd=installed.base))
    assert out.startswith("ok: 2 build sets, 6 hosts;"), out
    # The installed schemas are what judge it.
    with (copy / "fleet.yaml").open("a") as fleet:
        fleet.write("surprise: 1\n")
    bad = installed.run("validate", str(copy), cwd=installed.base)
    assert bad.returncode == 1
    assert "fleet.yaml:" in bad.stdout and "unknown key 'surprise'" in bad.stdout, bad.stdout


@dataclass
class DemoRun:
    proc: subprocess.Popen[str]
    tmp: Path  # TMPDIR of the run
    work: Path | None  # --dir, if given

    def wait(self) -> tuple[str, str]:
        out, err = self.proc.communicate(timeout=DEMO_TIMEOUT)
        assert self.proc.returncode == 0, f"demo exit {self.proc.returncode}\n{out}\n{err}"
        return out, err


@pytest.fixture(scope="module")
def demos(installed: Installed) -> Iterator[dict[str, DemoRun]]:
    """``reconciler demo`` and ``reconciler demo --dir D --keep``, running side by side."""
    runs: dict[str, DemoRun] = {}
    for name, extra in (("plain", []), ("keep", ["--keep"])):
        tmp = installed.base / f"tmp-{name}"
        tmp.mkdir()
        work = installed.base / "kept" if extra else None
        args = ["demo", "--subnet", fresh_subnet(), *extra]
        if work is not None:
            args += ["--dir", str(work)]
        env = installed.env() | {"TMPDIR": str(tmp)}
        proc = subprocess.Popen(
            [str(installed.venv / "bin" / "reconciler"), *args],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs[name] = DemoRun(proc, tmp, work)
    try:
        yield runs
    finally:
        for run in runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
            with contextlib.suppress(Exception):
                run.proc.communicate(timeout=30)
            if run.work is not None and (run.work / "fleet" / "fleet.json").exists():
                SimFleet.attach(run.work / "fleet").down()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
    return found


def test_demo_runs_the_whole_rollout_from_the_wheel(demos: dict[str, DemoRun]) -> None:
    run = demos["plain"]
    out, _ = run.wait()
    assert "### apply: source -> build -> test -> production" in out
    assert "lab: generation" in out and "converged" in out
    assert out.rstrip().endswith("Done.")
    # Its scratch directory and its fleet are gone with it.
    assert list(run.tmp.glob("reconciler-demo-*")) == []
    assert _processes_mentioning(str(run.tmp)) == []


def test_demo_keep_leaves_the_fleet_running_and_says_how_to_stop_it(
    installed: Installed, demos: dict[str, DemoRun]
) -> None:
    run = demos["keep"]
    assert run.work is not None
    out, _ = run.wait()
    fleet_dir = run.work.resolve() / "fleet"
    lines = out.splitlines()
    start = lines.index(f"Done. The simulated fleet is still running in {fleet_dir}. Look around:")
    stop = lines.index("Stop it with:")
    look = [line.strip() for line in lines[start + 1 : stop]]
    assert [line.split()[:2] for line in look] == [
        ["reconciler", "sim"],
        ["reconciler", "plan"],
        ["reconciler", "history"],
        ["ssh", "-F"],
    ]
    assert lines[stop + 1 :] == [f"  reconciler sim down --dir {fleet_dir}"]

    # The demo process has ended; its fleet has not.
    status = _check(installed.run("sim", "status", "--dir", str(fleet_dir), cwd=run.tmp))
    rows = [line.split() for line in status.splitlines()[1:]]
    assert len(rows) == 6 and all(row[2] == "on" for row in rows), status

    # Every command it prints works as printed, from a user's shell.
    outputs = [
        _check(
            subprocess.run(
                ["sh", "-c", line],
                cwd=run.tmp,
                env=installed.env(),
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
        )
        for line in look
    ]
    assert "web1" in outputs[0] and "in sync" in outputs[1]
    assert "converged" in outputs[2]
    assert outputs[3].splitlines()[:2] == ["14.2-STABLE", "14.2-STABLE"]

    # A second demo in the same directory refuses before it touches the kept config repo.
    again = installed.run("demo", "--dir", str(run.work), "--subnet", fresh_subnet(), cwd=run.tmp)
    assert again.returncode == 1
    assert "still running" in again.stderr and "reconciler sim down --dir" in again.stderr
    assert "converged" in _check(installed.run("history", str(run.work / "config"), cwd=run.tmp))

    _check(
        subprocess.run(
            ["sh", "-c", lines[stop + 1]], cwd=run.tmp, env=installed.env(),
            capture_output=True, text=True, timeout=60,
        )
    )  # fmt: skip
    after = _check(installed.run("sim", "status", "--dir", str(fleet_dir), cwd=run.tmp))
    assert "is not running" in after
    assert not SimFleet.attach(fleet_dir).running()
