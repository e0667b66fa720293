"""The src host is not rebooted while another build set's host installs from it (issue 10 #11).

Build sets roll out in parallel and the src host (builder) serves /usr/src to
both. db2 installs in place slowly (kernel, reboot, world, reboot); the lab
set reaches its last production host, builder, meanwhile. builder must wait
until db2 has verified, and db2 converges with its mounts intact.
"""

from __future__ import annotations

from tests.rollout.conftest import Lab


def _index(subjects: list[str], prefix: str, *, last: bool = False) -> int:
    found = [i for i, s in enumerate(subjects) if s.startswith(prefix)]
    assert found, prefix
    return found[-1] if last else found[0]


def test_src_host_waits_for_another_sets_installs(lab: Lab) -> None:
    lab.fleet.set_fault("db2", "slow", 4)  # db2's installs outlast lab's production
    done = lab.apply()
    lab.fleet.clear_fault("db2", "slow")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    subjects = lab.subjects()
    db2_first = _index(subjects, "db2: installing")
    db2_done = _index(subjects, "db2: installed")
    builder_reboot = _index(subjects, "builder: rebooting", last=True)
    assert db2_first < builder_reboot, "db2 was not installing when builder came to reboot"
    assert builder_reboot > db2_done, subjects
    assert "waiting to reboot: db2 install from this host over NFS" in done.stdout, (
        "\n".join(subjects) + done.stdout
    )
