"""make.conf and src.conf travel with the boot environment (issue 10 #12).

The build reads the rendered files kept beside it (__MAKE_CONF, SRCCONF under
/usr/obj/<id>/.reconciler/), a boot-environment install writes the host's files
into the new BE, so a host rolled back to its previous BE has its previous files.
"""

from __future__ import annotations

from reconciler.config.buildid import build_id
from reconciler.config.load import load_config
from tests.rollout.conftest import Lab


def test_a_rollback_restores_the_previous_make_conf(small_lab: Lab) -> None:
    lab = small_lab
    first = lab.apply("--buildset", "lab")
    assert first.returncode == 0, first.stdout[-3000:]
    before = lab.fleet.read_file("tester", "/etc/make.conf")
    assert before is not None and "CFLAGS+=-pipe" not in before

    lab.edit("buildsets/lab/make.conf", r"\Z", "\nCFLAGS+=-pipe\n", "build with -pipe")
    build = build_id(load_config(lab.repo, "HEAD"), "lab")
    lab.fleet.set_fault("tester", "health-fails")
    failed = lab.apply("--buildset", "lab")
    lab.fleet.clear_fault("tester", "health-fails")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "rolled back" in failed.stdout
    # the build was made with its own files, beside it
    kept = lab.fleet.read_file("builder", f"/usr/obj/{build}/.reconciler/make.conf")
    assert kept is not None and "CFLAGS+=-pipe" in kept
    # back on its previous BE, with that BE's make.conf: the failed generation's is gone
    assert lab.booted_be("tester") != f"rc-{build[:12]}"
    assert lab.fleet.read_file("tester", "/etc/make.conf") == before

    # the failed build is quarantined: the next apply leaves it, a retry installs it
    held = lab.apply("--buildset", "lab")
    assert held.returncode == 1 and "is quarantined; nothing done" in held.stdout
    assert lab.booted_be("tester") != f"rc-{build[:12]}"
    done = lab.apply("--buildset", "lab", "--retry-quarantined")
    assert done.returncode == 0, done.stdout[-3000:]
    assert lab.booted_be("tester") == f"rc-{build[:12]}"
    assert "CFLAGS+=-pipe" in (lab.fleet.read_file("tester", "/etc/make.conf") or "")
