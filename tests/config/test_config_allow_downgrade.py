"""rollout.allow_downgrade: off by default, a boolean, and refused as anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config.load import load_config
from reconciler.errors import ConfigInvalid
from tests.config.conftest import edit

LAB = "buildsets/lab/buildset.yaml"


def test_off_by_default_and_read_when_set(repo: Path) -> None:
    assert load_config(repo).buildset("lab").rollout.allow_downgrade is False
    edit(repo / LAB, "  soak: 5", "  soak: 5\n  allow_downgrade: true")
    config = load_config(repo)
    assert config.buildset("lab").rollout.allow_downgrade is True
    assert config.buildset("db").rollout.allow_downgrade is False


def test_a_string_is_refused_with_file_line_and_what_it_means(repo: Path) -> None:
    edit(repo / LAB, "  soak: 5", '  soak: 5\n  allow_downgrade: "yes"')
    with pytest.raises(ConfigInvalid) as caught:
        load_config(repo)
    (problem,) = [str(p) for p in caught.value.problems]
    assert problem.startswith(f"{LAB}:19:20: rollout.allow_downgrade: must be true or false")
    assert "not a string" in problem and "__FreeBSD_version" in problem
