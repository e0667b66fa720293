"""Package data has one source: the top-level directories, linked into the package."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from reconciler.sim.example import copy_example_repo, example_repo_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("inside", "source"),
    [
        ("reconciler/example-repo", "example-repo"),
        ("reconciler/schema", "schema"),
        ("reconciler/reconciler.toml.sample", "reconciler.toml.sample"),
    ],
)
def test_package_data_is_a_link_to_the_top_level_source(inside: str, source: str) -> None:
    link = ROOT / inside
    assert link.is_symlink(), f"{inside} must be a link to {source}, not a copy"
    assert not os.path.isabs(os.readlink(link))  # relative: works in any checkout
    assert link.resolve() == (ROOT / source).resolve()


def test_pyproject_ships_what_the_links_bring() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["reconciler"]
    assert {"schema/*.json", "example-repo/**/*", "reconciler.toml.sample"} <= set(data)


def test_the_example_repo_is_found_through_the_package(tmp_path: Path) -> None:
    assert example_repo_path().resolve() == (ROOT / "example-repo").resolve()
    copy = copy_example_repo(tmp_path / "copy", subnet="127.0.7")
    assert "127.0.7.11" in (copy / "buildsets" / "lab" / "buildset.yaml").read_text()
    assert (copy / ".git").is_dir()
